"""The translation scores against closed forms: edge energy on patterns whose neighbour
differences are known, L1, and the classifier scores where outputs equal targets."""
import numpy as np
import pytest

from minigan.eval import edge_energy, load_classifier, translation_scores


def test_edge_energy_of_known_patterns():
    assert edge_energy(np.full((2, 1, 8, 8), 0.3)) == 0.0
    checkerboard = np.where(np.indices((8, 8)).sum(0) % 2, 1.0, -1.0)[None, None]
    assert edge_energy(checkerboard) == pytest.approx(2.0)  # every neighbour differs by 2
    stripes = np.tile(np.array([-1.0, 1.0] * 4), (8, 1))[None, None]  # vertical stripes: only horizontal steps
    assert edge_energy(stripes) == pytest.approx(1.0)
    ramp = np.tile(np.linspace(-1, 1, 9), (9, 1))[None, None]  # steps of 0.25 across, none down
    assert edge_energy(ramp) == pytest.approx(0.125)


def test_blurring_lowers_edge_energy():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 1, 16, 16))
    blurred = (x + np.roll(x, 1, 3) + np.roll(x, 1, 2) + np.roll(np.roll(x, 1, 2), 1, 3)) / 4
    assert edge_energy(blurred) < 0.7 * edge_energy(x)


def test_scores_of_outputs_equal_to_the_targets():
    classifier = load_classifier("fashion-mnist")
    rng = np.random.default_rng(0)
    targets = rng.uniform(-1, 1, (50, 1, 32, 32)).astype(np.float32)
    labels = classifier.predict(targets)  # the classifier's own labels: its accuracy on them is 1
    scores = translation_scores(classifier, targets, targets, labels)
    assert scores["l1"] == 0 and scores["accuracy"] == scores["accuracy_targets"] == 1.0
    assert abs(scores["classifier_fd"]) < 1e-4 and scores["edge_energy_ratio"] == pytest.approx(1.0)
    shifted = translation_scores(classifier, np.clip(targets + 0.5, -1, 1), targets, labels)
    assert shifted["l1"] == pytest.approx(np.abs(np.clip(targets + 0.5, -1, 1) - targets).mean(), rel=1e-6)
    assert shifted["classifier_fd"] > 0


def test_mismatched_arrays_are_refused():
    with pytest.raises(ValueError, match="same examples"):
        translation_scores(load_classifier("fashion-mnist"), np.zeros((2, 1, 8, 8)), np.zeros((3, 1, 8, 8)), [0, 1])
