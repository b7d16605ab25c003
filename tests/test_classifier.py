"""The evaluation classifier and the scores read off it: committed weights that classify,
a torch twin that agrees, the Fréchet distance against scipy and closed forms, coverage."""
import os

import numpy as np
import pytest

from minigan.data import load_digits, load_fashion_mnist
from minigan.data.mnist import FASHION_MNIST_DIR
from minigan.eval import (Classifier, class_coverage, classifier_fd, conditional_accuracy, feature_statistics,
                          frechet_distance, load_classifier, read_classifier, save_classifier, score_samples,
                          weights_path, within_class_distance)
from minigan.eval.train_classifier import train_classifier


@pytest.fixture(scope="module")
def digits_classifier():
    return load_classifier("digits")


@pytest.fixture(scope="module")
def digits_test():
    return load_digits(split="test")


def test_committed_digits_weights_classify_the_test_split(digits_classifier, digits_test):
    x, y = digits_test
    assert (digits_classifier.predict(x) == y).mean() >= 0.95
    assert digits_classifier.metrics["test_accuracy"] >= 0.95


def test_digits_classifier_reads_resized_digits(digits_classifier):
    x, y = load_digits(size=32, split="test")  # a 32x32 generator's samples are scored the same way
    assert (digits_classifier.predict(x) == y).mean() >= 0.95


def test_committed_weights_files_stay_small():
    for data in ("digits", "fashion-mnist"):
        if os.path.isfile(weights_path(data)):
            assert os.path.getsize(weights_path(data)) < 1_000_000


def test_a_torch_twin_with_the_same_weights_gives_the_same_logits(digits_classifier, digits_test):
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    twin = tnn.Module()
    twin.features = tnn.Sequential(tnn.Conv2d(1, 32, 4, 2, 1), tnn.LeakyReLU(0.2), tnn.Conv2d(32, 64, 4, 2, 1),
                                   tnn.LeakyReLU(0.2), tnn.Flatten(), tnn.Linear(64 * 2 * 2, 128), tnn.ReLU())
    twin.head = tnn.Sequential(tnn.Dropout(0.3), tnn.Linear(128, 10))
    twin.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in digits_classifier.state_dict().items()})
    twin.eval()
    x = digits_test[0][:64]
    with torch.no_grad():
        expected = twin.head(twin.features(torch.from_numpy(x))).numpy()
    np.testing.assert_allclose(digits_classifier.logits(x), expected, rtol=1e-4, atol=1e-4)


def test_training_saving_and_reading_back_give_the_same_network(tmp_path, digits_test):
    classifier, metrics = train_classifier("digits", epochs=1, log=lambda *_: None)
    assert metrics["test_accuracy"] > 0.5  # one epoch of 22 steps is well past chance (0.1)
    save_classifier(tmp_path / "c.safetensors", classifier, "digits", metrics)
    back, state = read_classifier(tmp_path / "c.safetensors")
    assert state["metrics"]["test_accuracy"] == metrics["test_accuracy"]
    np.testing.assert_array_equal(back.logits(digits_test[0]), classifier.logits(digits_test[0]))
    with pytest.raises(ValueError, match="holds a classifier for 'digits'"):
        load_classifier("fashion-mnist", path=tmp_path / "c.safetensors")


def test_missing_weights_say_how_to_train_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m minigan.eval.train_classifier --data mnist"):
        load_classifier("mnist", path=str(tmp_path / "none.safetensors"))


def test_classifier_rejects_images_with_the_wrong_channels(digits_classifier):
    with pytest.raises(ValueError, match=r"expected images \(N, 1, H, W\)"):
        digits_classifier.predict(np.zeros((2, 3, 8, 8), np.float32))


# ---------------------------------------------------------------- Fréchet distance


def _random_gaussian(rng, d):
    a = rng.standard_normal((d, d))
    return rng.standard_normal(d), a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_equals_the_direct_scipy_formula():
    from scipy import linalg
    rng = np.random.default_rng(0)
    for d in (1, 3, 16):
        (mu1, s1), (mu2, s2) = _random_gaussian(rng, d), _random_gaussian(rng, d)
        expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-9)


def test_frechet_distance_of_commuting_gaussians_has_its_closed_form():
    # diagonal covariances: FD = |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.0])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    expected = 1 + 9 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_of_a_set_with_itself_is_zero(digits_classifier, digits_test):
    x = digits_test[0]
    stats = feature_statistics(digits_classifier.embed(x))
    assert abs(frechet_distance(*stats, *stats)) < 1e-6 * np.trace(stats[1])
    assert abs(classifier_fd(digits_classifier, x, x)) < 1e-6 * np.trace(stats[1])


def test_classifier_fd_grows_with_noise(digits_classifier, digits_test):
    train, _ = load_digits(split="train")
    x = digits_test[0]
    noisy = np.clip(x + 0.5 * np.random.default_rng(0).standard_normal(x.shape), -1, 1).astype(np.float32)
    assert classifier_fd(digits_classifier, train, x) < classifier_fd(digits_classifier, train, noisy)


# ---------------------------------------------------------------- coverage and conditional accuracy


def test_coverage_of_a_one_class_set_is_one():
    scores = class_coverage(np.full(500, 7), n_classes=10)
    assert scores["classes_hit"] == 1 and scores["class_entropy"] == 0.0
    assert scores["class_histogram"][7] == 500


def test_coverage_of_a_balanced_set_is_every_class_at_maximal_entropy():
    scores = class_coverage(np.repeat(np.arange(10), 30), n_classes=10)
    assert scores["classes_hit"] == 10
    assert scores["class_entropy"] == pytest.approx(np.log(10)) == pytest.approx(scores["class_entropy_max"])
    # a class holding under min_share of the samples is not counted as hit
    assert class_coverage(np.r_[np.zeros(999, int), 1], n_classes=10)["classes_hit"] == 1


def test_conditional_accuracy_counts_samples_classified_as_their_label():
    scores = conditional_accuracy(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), n_classes=4)
    assert scores["accuracy"] == 0.75
    assert scores["accuracy_per_class"] == [1.0, 1.0, 0.5, None]


def test_within_class_distance_is_the_mean_distance_between_two_images_of_a_label():
    images = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0], [1.0, 1.0]]).reshape(4, 1, 1, 2)
    labels = np.array([0, 0, 1, 1])
    assert within_class_distance(images, labels) == pytest.approx((5.0 + 0.0) / 2)  # label 1 collapsed: 0


def test_score_samples_on_real_test_digits(digits_classifier, digits_test):
    x, y = digits_test
    scores = score_samples(digits_classifier, x, labels=y, real=load_digits(split="train")[0])
    assert scores["accuracy"] >= 0.95 and scores["classes_hit"] == 10
    assert scores["class_entropy"] > 0.98 * np.log(10) and scores["classifier_fd"] > 0


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isfile(weights_path("fashion-mnist")), reason="no committed Fashion-MNIST weights")
@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR),
                    reason=f"Fashion-MNIST not installed in {FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist)")
def test_committed_fashion_mnist_weights_classify_the_test_split():
    x, y = load_fashion_mnist("test")
    classifier = load_classifier("fashion-mnist")
    assert (classifier.predict(x) == y).mean() >= 0.88


def test_a_fresh_classifier_has_the_documented_shapes():
    c = Classifier(image_size=28, widths=(32, 64, 64))
    assert c.features[7].in_features == 64 * 3 * 3  # 28 -> 14 -> 7 -> 3
    assert c.embed(np.zeros((3, 1, 28, 28), np.float32)).shape == (3, 128)
    with pytest.raises(ValueError, match="shrink"):
        Classifier(image_size=4, widths=(8, 8, 8))
