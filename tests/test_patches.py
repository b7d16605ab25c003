"""The patch-statistics check: its distance against closed forms, its patches against torch's unfold."""
import math

import numpy as np
import pytest
import torch
from scipy.stats import wasserstein_distance

from minigan.eval import patches


def test_patches_are_torch_unfold_columns():
    image = np.random.default_rng(0).normal(size=(3, 9, 11))
    ours = patches._patches(image, 4)
    theirs = torch.nn.functional.unfold(torch.tensor(image)[None], 4)[0].T.numpy()
    np.testing.assert_allclose(ours, theirs)


def test_one_dimensional_distance_is_the_wasserstein_distance():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3000, 1)), rng.exponential(2.0, size=(2000, 1))
    expected = wasserstein_distance(a[:, 0], b[:, 0])
    assert patches.sliced_wasserstein(a, b, directions=4, quantiles=4000) == pytest.approx(expected, rel=0.02)


def test_shifted_gaussians_give_the_closed_form():
    # N(0, I) against N(m, I): on direction u the projections differ by a shift m.u, so
    # SWD = |m| E|u_1| = |m| Gamma(d/2) / (sqrt(pi) Gamma((d+1)/2)).
    d, shift = 5, 1.5
    rng = np.random.default_rng(2)
    a = rng.normal(size=(5000, d))
    b = rng.normal(size=(5000, d)) + shift * np.eye(d)[0]
    expected = shift * math.gamma(d / 2) / (math.sqrt(math.pi) * math.gamma((d + 1) / 2))
    assert patches.sliced_wasserstein(a, b, directions=1000, quantiles=100) == pytest.approx(expected, rel=0.06)


def stripes(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:h, :w]
    base = np.sin(2 * np.pi * (x + 0.5 * y) / 6.0)
    return np.stack([base, -base, 0.5 * base]) * 0.8 + 0.05 * rng.normal(size=(3, h, w))


def test_report_orders_a_copy_the_other_half_and_shuffled_pixels():
    exemplar = stripes(64, 128, 3)
    fit, held_out = patches.split_exemplar(exemplar)
    assert fit.shape == held_out.shape == (3, 64, 64)
    np.testing.assert_array_equal(np.concatenate([fit, held_out], axis=2), exemplar)
    copy = patches.patch_report(fit, exemplar)
    noise = patches.patch_report(np.random.default_rng(4).uniform(-1, 1, (2, 3, 64, 64)), exemplar)
    assert copy["output"] < 1e-9
    assert copy["held_out"] < 0.5 * copy["shuffled"]
    assert noise["output"] > copy["held_out"]
    assert len(copy["output_per_level"]) == 3  # 64 -> 32 -> 16 holds two 7x7 patches, 8 does not


def test_shuffle_keeps_the_colours():
    image = stripes(10, 12, 5)
    shuffled = patches.shuffle_pixels(image, seed=1)
    assert not np.array_equal(shuffled, image)
    order = lambda im: np.lexsort(im.reshape(3, -1))  # noqa: E731
    np.testing.assert_array_equal(shuffled.reshape(3, -1)[:, order(shuffled)], image.reshape(3, -1)[:, order(image)])


def test_bad_input_names_what_was_wrong():
    with pytest.raises(ValueError, match="one \\(C, H, W\\) image"):
        patches.split_exemplar(np.zeros((1, 3, 8, 8)))
    with pytest.raises(ValueError, match="same number of channels"):
        patches.patch_distance(np.zeros((1, 16, 16)), np.zeros((3, 16, 16)))
    with pytest.raises(ValueError, match="smaller than the 7x7 patch"):
        patches.patch_distance(np.zeros((3, 5, 16)), np.zeros((3, 16, 16)))
    with pytest.raises(ValueError, match="empty"):
        patches.patch_distance([], np.zeros((3, 16, 16)))
    with pytest.raises(ValueError, match=r"\(C, H, W\) or \(N, C, H, W\)"):
        patches.patch_distance(np.zeros((16, 16)), np.zeros((3, 16, 16)))
