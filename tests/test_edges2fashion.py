"""edges2fashion: Canny edge maps of Fashion-MNIST as pix2pix's input, the image as its target.

The edges are checked on shapes whose edges are known (a filled rectangle), the
pairing against the images' own order, the cache against a fresh computation, and
the unpaired split for CycleGAN against its promise: no edge map comes with its image.
"""
import os

import numpy as np
import pytest

from minigan.data import (FASHION_MNIST_DIR, canny_edges, load_edges2fashion, load_fashion_mnist,
                          load_unpaired_edges2fashion, write_idx)
from minigan.data import edges2fashion


def _rectangle(size=32, top=8, left=10, bottom=24, right=20):
    image = np.full((1, 1, size, size), -1.0, np.float32)
    image[0, 0, top:bottom, left:right] = 1.0
    return image


def test_edges_of_a_filled_rectangle_lie_on_its_border_and_nowhere_else():
    edges = canny_edges(_rectangle())
    assert edges.shape == (1, 1, 32, 32) and edges.dtype == np.float32
    assert set(np.unique(edges)) == {-1.0, 1.0}
    ys, xs = np.nonzero(edges[0, 0] > 0)
    # the image steps between rows 7|8 and 23|24 and columns 9|10 and 19|20: every edge pixel
    # is next to one of those steps, within the rectangle's extent
    rows, cols = np.minimum(abs(ys - 7.5), abs(ys - 23.5)), np.minimum(abs(xs - 9.5), abs(xs - 19.5))
    assert ((rows <= 0.5) & (xs >= 9) & (xs <= 20) | (cols <= 0.5) & (ys >= 7) & (ys <= 24)).all()
    # and the border is traced on all four sides
    for side in ((7, 8), (23, 24)):
        assert set(ys[xs == 15]) & set(side)
    for side in ((9, 10), (19, 20)):
        assert set(xs[ys == 15]) & set(side)


def test_a_flat_image_has_no_edges():
    assert (canny_edges(np.zeros((3, 1, 16, 16), np.float32)) == -1).all()


def _fake_fashion_mnist(directory, n_train=12, n_test=4, seed=0):
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = np.zeros((n, 28, 28), np.uint8)
        for i in range(n):  # a bright box at a random place: every image distinct, with edges
            top, left = rng.integers(2, 12, 2)
            images[i, top:top + rng.integers(8, 14), left:left + rng.integers(8, 14)] = rng.integers(128, 256)
        write_idx(directory / f"{prefix}-images-idx3-ubyte", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n).astype(np.uint8))


@pytest.fixture
def fake_data(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGAN_DATA", str(tmp_path / "cache"))
    _fake_fashion_mnist(tmp_path)
    return tmp_path


def test_pairs_are_each_images_edges_in_the_images_order(fake_data):
    data = load_edges2fashion("train", directory=fake_data)
    images, labels = load_fashion_mnist("train", directory=fake_data, size=32)
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)
    np.testing.assert_array_equal(data.edges, canny_edges(images, sigma=1.0))
    assert data.edges.shape == (12, 1, 32, 32) and (data.edges > 0).any()
    assert len(load_edges2fashion("test", directory=fake_data).images) == 4


def test_the_cache_is_written_once_and_read_back_instead_of_recomputing(fake_data, monkeypatch):
    first = load_edges2fashion("train", directory=fake_data)
    path = edges2fashion.edges_cache_path("train")
    assert os.path.isfile(path) and path.startswith(str(fake_data / "cache"))
    assert [f for f in os.listdir(os.path.dirname(path)) if f.endswith(".tmp")] == []  # written atomically

    def refuse(*args, **kwargs):
        raise AssertionError("the cached edges should have been used")
    monkeypatch.setattr(edges2fashion, "canny_edges", refuse)
    np.testing.assert_array_equal(load_edges2fashion("train", directory=fake_data).edges, first.edges)


def test_a_cache_made_from_other_images_is_recomputed(fake_data, tmp_path):
    load_edges2fashion("train", directory=fake_data)
    other = tmp_path / "other"
    other.mkdir()
    _fake_fashion_mnist(other, seed=1)
    data = load_edges2fashion("train", directory=other)  # the same cache file, other images
    np.testing.assert_array_equal(data.edges, canny_edges(data.images))


def test_cache_false_neither_reads_nor_writes(fake_data):
    load_edges2fashion("train", directory=fake_data, cache=False)
    assert not os.path.exists(edges2fashion.edges_cache_path("train"))


def test_a_limit_takes_the_first_pairs_without_caching_them(fake_data):
    part = load_edges2fashion("train", directory=fake_data, limit=5)
    whole = load_edges2fashion("train", directory=fake_data, cache=False)
    for a, b in zip(part, whole):
        np.testing.assert_array_equal(a, b[:5])
    assert not os.path.exists(edges2fashion.edges_cache_path("train"))


def test_unpaired_split_never_shows_an_edge_map_with_its_own_image(fake_data):
    paired = load_edges2fashion("train", directory=fake_data)
    unpaired = load_unpaired_edges2fashion(directory=fake_data, seed=3)
    key = [im.tobytes() for im in paired.images]
    # locate every unpaired edge map and image among the pairs, by content
    edge_sources = {i for e in unpaired.edges for i in range(len(key)) if np.array_equal(paired.edges[i], e)}
    image_sources = {key.index(im.tobytes()) for im in unpaired.images}
    assert len(unpaired.edges) == len(unpaired.images) == 6
    assert len(image_sources) == 6 and edge_sources.isdisjoint(image_sources)
    assert len(edge_sources | image_sources) == 12  # the two halves cover the training split
    np.testing.assert_array_equal(unpaired.image_labels, paired.labels[sorted(image_sources)])
    again = load_unpaired_edges2fashion(directory=fake_data, seed=3)
    np.testing.assert_array_equal(again.images, unpaired.images)  # the split is seeded


def test_bad_split_is_refused():
    with pytest.raises(ValueError, match="split"):
        load_edges2fashion("all")
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        canny_edges(np.zeros((2, 3, 8, 8)))


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR), reason=f"Fashion-MNIST not installed in {FASHION_MNIST_DIR}")
def test_installed_test_split_pairs_10000_garments_with_their_outlines(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGAN_DATA", str(tmp_path))
    data = load_edges2fashion("test")
    assert data.edges.shape == data.images.shape == (10000, 1, 32, 32)
    np.testing.assert_array_equal(np.bincount(data.labels), np.full(10, 1000))
    on = data.edges > 0
    assert 0.05 < on.mean() < 0.3  # outlines: a minority of the pixels
    # edges sit where the image changes: the gradient magnitude on edge pixels is larger than off them
    gy, gx = np.gradient(data.images[:, 0], axis=(1, 2))
    magnitude = np.hypot(gx, gy)[:, None]
    assert magnitude[on].mean() > 3 * magnitude[~on].mean()
