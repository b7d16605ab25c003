"""The memorization check (minigan/eval/memorization.py) and its --nearest-neighbours option.

Nearest neighbours against a brute-force torch reference (torch.cdist + topk); a
planted copy of a training image is found at distance 0 and flagged; samples drawn
from the training distribution itself (new draws, not copies) give the held-out
distance distribution back; the example option writes its files.
"""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats

from minigan.data import load_digits
from minigan.eval import load_classifier
from minigan.eval.memorization import check_memorization, compare_distances, ks_statistic, nearest_neighbours
from test_examples import run


@pytest.mark.parametrize("shape,k", [((8,), 1), ((1, 6, 6), 3), ((3, 4, 4), 5), ((2, 3), 40)])
def test_nearest_neighbours_match_torch_cdist(shape, k):
    rng = np.random.default_rng(0)
    queries = rng.standard_normal((300,) + shape).astype(np.float32)  # 300: three chunks of 128
    references = rng.standard_normal((500,) + shape).astype(np.float32)
    distances, indices = nearest_neighbours(queries, references, k)
    d = torch.cdist(torch.tensor(queries.reshape(300, -1), dtype=torch.float64),
                    torch.tensor(references.reshape(500, -1), dtype=torch.float64))
    expected, expected_indices = torch.topk(d, k, dim=1, largest=False)
    np.testing.assert_allclose(distances, expected.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(indices, expected_indices.numpy())
    assert distances.dtype == np.float64 and indices.dtype == np.int64


def test_nearest_neighbours_refuse_what_they_cannot_compare():
    with pytest.raises(ValueError, match="one shape"):
        nearest_neighbours(np.zeros((2, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="3 references"):
        nearest_neighbours(np.zeros((2, 4)), np.zeros((3, 4)), k=4)


def test_ks_statistic_matches_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(300), rng.normal(0.3, 1.2, 170)
    assert ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    assert ks_statistic(a, a) == 0.0


def digits():
    train, _ = load_digits(split="train", seed=0)
    test, _ = load_digits(split="test", seed=0)
    return train, test


def test_a_planted_copy_is_found_at_distance_zero_and_flagged(tmp_path):
    train, test = digits()
    rng = np.random.default_rng(2)
    # new images: held-out digits with a little noise; then three exact training images
    samples = np.clip(test[:200] + rng.normal(0, 0.05, test[:200].shape), -1, 1).astype(np.float32)
    planted = [5, 77, 1000]
    samples = np.concatenate([samples, train[planted]])
    report = check_memorization(samples, train, test[200:], load_classifier("digits"), out=str(tmp_path))
    for space in ("pixel", "feature"):
        numbers = report[space]
        assert numbers["exact_copies"] == 3
        assert set(numbers["flagged"][:3]) == {200, 201, 202}
        assert numbers["share_below_held_out_p1"] >= 3 / len(samples)
    distances, indices = nearest_neighbours(samples[200:], train)
    assert (distances[:, 0] == 0).all() and list(indices[:, 0]) == planted


def test_pictures_show_each_sample_beside_its_neighbours_in_both_spaces(tmp_path):
    train, test = digits()
    check_memorization(test[:50], train, test[50:], load_classifier("digits"), out=str(tmp_path), k=3, rows=8)
    grid = Image.open(tmp_path / "nearest.png")
    # 8 rows; a sample, a blank, 3 pixel neighbours, a blank, 3 feature neighbours: 9 tiles of 8 + 2 padding
    assert grid.size == (9 * 10 + 2, 8 * 10 + 2)
    assert (tmp_path / "nearest_distances.png").stat().st_size > 0


def test_samples_from_the_data_distribution_match_the_held_out_distances():
    """Samples that are new draws of the training distribution (not copies) are as far from
    the training set as held-out draws: about 1% fall below the held-out 1st percentile, and
    the two distance distributions agree (KS)."""
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((10, 16)) * 3

    def draw(n):
        return (centres[rng.integers(0, 10, n)] + rng.standard_normal((n, 16))).astype(np.float32)
    train, held_out, samples = draw(3000), draw(2000), draw(2000)
    s_dist, _ = nearest_neighbours(samples, train)
    h_dist, _ = nearest_neighbours(held_out, train)
    numbers = compare_distances(s_dist[:, 0], h_dist[:, 0])
    # Binomial(2000, 0.01): mean 20, sd 4.4; the threshold is itself estimated from 2000 draws
    assert 0.0 < numbers["share_below_held_out_p1"] < 0.03
    assert numbers["ks_statistic"] < 1.63 * np.sqrt(2 / 2000)  # KS critical value at the 1% level
    assert numbers["median_ratio"] == pytest.approx(1.0, abs=0.05)
    # and copies do not: half the samples replaced by training points
    samples[:1000] = train[:1000]
    s_dist, _ = nearest_neighbours(samples, train)
    copied = compare_distances(s_dist[:, 0], h_dist[:, 0])
    assert copied["share_below_held_out_p1"] >= 0.5 and copied["exact_copies"] == 1000


def test_example_option_writes_the_pictures_and_the_numbers(tmp_path):
    metrics = run("vae", tmp_path / "with", "--steps", 3, "--nearest-neighbours")
    for f in ("nearest.png", "nearest_distances.png"):
        assert (tmp_path / "with" / f).stat().st_size > 0, f
    saved = json.loads((tmp_path / "with" / "metrics.json").read_text())["memorization"]
    assert saved == json.loads(json.dumps(metrics["memorization"]))
    assert saved["samples"] == 1000 and set(saved) >= {"pixel", "feature"}
    run("vae", tmp_path / "without", "--steps", 3)
    assert not (tmp_path / "without" / "nearest.png").exists()
    assert "memorization" not in json.loads((tmp_path / "without" / "metrics.json").read_text())


@pytest.mark.parametrize("name,args", [
    ("gan", ["--data", "digits", "--steps", 2, "--batch-size", 16]),
    ("dcgan", ["--steps", 2, "--batch-size", 8, "--width", 8]),
    ("wgan", ["--data", "digits", "--steps", 1, "--batch-size", 8, "--width", 8, "--n-critic", 1]),
    ("cgan", ["--steps", 2, "--batch-size", 16]),
    ("infogan", ["--steps", 2, "--batch-size", 16]),
    ("vaegan", ["--steps", 2, "--batch-size", 16]),
])
def test_every_generative_example_takes_the_option(tmp_path, name, args):
    metrics = run(name, tmp_path, *args, "--nearest-neighbours")
    assert metrics["memorization"]["samples"] >= 1000
    assert (tmp_path / "nearest.png").stat().st_size > 0


def test_example_option_needs_images():
    with pytest.raises(SystemExit):
        run("gan", "unused", "--data", "ring", "--nearest-neighbours")


def test_example_option_on_cuda(fake_cuda, tmp_path):
    """Samples made on the GPU (the stand-in CuPy of tests/fake_cupy.py) are checked as on the CPU."""
    metrics = run("dcgan", tmp_path, "--device", "cuda", "--steps", 2, "--batch-size", 8, "--width", 8,
                  "--nearest-neighbours")
    assert metrics["memorization"]["pixel"]["exact_copies"] == 0
    assert (tmp_path / "nearest.png").stat().st_size > 0
