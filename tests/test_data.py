"""Offline data: toy mixtures and their mode metrics, digits, IDX files (MNIST, Fashion-MNIST),
scikit-image pictures, batch transforms, the DataLoader."""
import gzip
import os
import struct

import numpy as np
import pytest

from minigan.data import (DataLoader, DataNotFoundError, IDXError, grid_modes, load_digits, load_fashion_mnist,
                          load_mnist, mode_metrics, read_idx, ring, ring_modes, transforms, write_idx)
from minigan.data.mnist import FASHION_MNIST_DIR


def test_ring_samples_lie_on_their_modes():
    rng = np.random.default_rng(0)
    x = ring(4000, rng)
    m = mode_metrics(x, ring_modes(), std=0.02)
    # 3 sigma of a 2-D Gaussian holds 1 - exp(-9/2) = 98.9% of its mass
    assert m["modes_covered"] == 8
    assert abs(m["high_quality_share"] - (1 - np.exp(-4.5))) < 0.01
    np.testing.assert_allclose(np.linalg.norm(ring_modes(), axis=1), 2.0)


def test_collapsed_samples_cover_one_mode():
    x = np.repeat(ring_modes()[[3]], 500, axis=0)
    m = mode_metrics(x, ring_modes(), std=0.02)
    assert m["modes_covered"] == 1 and m["samples_per_mode"][3] == 500


def test_far_samples_are_not_high_quality():
    m = mode_metrics(np.zeros((100, 2)), ring_modes(), std=0.02)
    assert m["high_quality_share"] == 0.0 and m["modes_covered"] == 0


def test_grid_has_25_distinct_modes_centered():
    g = grid_modes()
    assert g.shape == (25, 2) and len({tuple(p) for p in g}) == 25
    np.testing.assert_allclose(g.mean(axis=0), 0.0, atol=1e-12)


def test_digits_are_scaled_to_unit_range_with_a_fixed_split():
    x, y = load_digits()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32
    assert x.min() == -1.0 and x.max() == 1.0 and set(y.tolist()) == set(range(10))
    train, _ = load_digits(split="train")
    test, _ = load_digits(split="test")
    assert len(train) + len(test) == 1797
    again, _ = load_digits(split="test")
    np.testing.assert_array_equal(test, again)
    assert load_digits(size=16)[0].shape == (1797, 1, 16, 16)


def test_loader_batches_cover_each_sample_once_per_epoch():
    x = np.arange(10, dtype=np.float32)[:, None]
    y = np.arange(10)
    loader = DataLoader(x, y, batch_size=3, drop_last=False, seed=1)
    seen = np.concatenate([bx.numpy()[:, 0] for bx, by in loader])
    assert sorted(seen.tolist()) == list(range(10)) and len(loader) == 4
    first = [by.numpy().tolist() for _, by in DataLoader(x, y, batch_size=3, seed=1)]
    again = [by.numpy().tolist() for _, by in DataLoader(x, y, batch_size=3, seed=1)]
    assert first == again and len(first) == 3  # drop_last


def test_loader_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="different lengths"):
        DataLoader(np.zeros(3), np.zeros(4))


# ---------------------------------------------------------------- IDX files

def _idx_bytes(array, code):
    """An IDX file built by hand from the format's definition, independent of write_idx."""
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def test_read_idx_reads_a_hand_built_file_plain_and_gzipped(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    values = np.array([[1.5, -2.0], [3.25, 1e6]], dtype=np.float32)
    (tmp_path / "images").write_bytes(_idx_bytes(images, 0x08))
    (tmp_path / "values.gz").write_bytes(gzip.compress(_idx_bytes(values, 0x0D)))
    (tmp_path / "gzipped-without-suffix").write_bytes(gzip.compress(_idx_bytes(images, 0x08)))
    np.testing.assert_array_equal(read_idx(tmp_path / "images"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "values.gz"), values)
    np.testing.assert_array_equal(read_idx(tmp_path / "gzipped-without-suffix"), images)
    assert read_idx(tmp_path / "values.gz").dtype == np.float32


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_write_idx_then_read_idx_round_trips(tmp_path, dtype, name):
    array = (np.random.default_rng(0).standard_normal((3, 2, 5)) * 50).astype(dtype)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_read_idx_rejects_a_wrong_magic_number(tmp_path):
    (tmp_path / "not-idx").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(IDXError, match="magic number is 89504e47"):
        read_idx(tmp_path / "not-idx")


def test_read_idx_rejects_a_file_shorter_than_its_header_says(tmp_path):
    data = _idx_bytes(np.zeros((4, 28, 28), np.uint8), 0x08)
    (tmp_path / "short").write_bytes(data[:-10])
    with pytest.raises(IDXError, match=r"shape \(4, 28, 28\)"):
        read_idx(tmp_path / "short")


def _write_split(directory, n_train=5, n_test=3, gz=True):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        images[0, 0, 0], images[0, 0, 1] = 0, 255
        labels = rng.integers(0, 10, n).astype(np.uint8)
        write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        out[split] = images, labels
    return out


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_loader_reads_a_directory_of_idx_files(tmp_path, gz):
    raw = _write_split(tmp_path, gz=gz)
    x, y = load_fashion_mnist("train", directory=tmp_path)
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x[:, 0], raw["train"][0] / 255.0 * 2 - 1, atol=1e-6)  # 0 -> -1, 255 -> 1
    assert x[0, 0, 0, 0] == -1.0 and x[0, 0, 0, 1] == 1.0
    np.testing.assert_array_equal(y, raw["train"][1])
    x_all, y_all = load_mnist("all", directory=tmp_path, size=32)
    assert x_all.shape == (8, 1, 32, 32) and x_all.min() >= -1 and x_all.max() <= 1
    np.testing.assert_array_equal(y_all, np.concatenate([raw["train"][1], raw["test"][1]]))


def test_missing_idx_directory_names_where_it_looked_and_how_to_get_the_data(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataNotFoundError) as info:
        load_fashion_mnist(directory=missing)
    message = str(info.value)
    assert str(missing) in message and "no such directory" in message
    assert "apt-get install dataset-fashion-mnist" in message and "download=True" in message


def test_default_search_looks_in_debians_directory_then_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGAN_DATA", str(tmp_path))
    from minigan.data.mnist import search_dirs
    assert search_dirs("fashion-mnist") == [FASHION_MNIST_DIR, str(tmp_path / "fashion-mnist")]
    assert search_dirs("mnist") == [str(tmp_path / "mnist")]
    with pytest.raises(DataNotFoundError, match=str(tmp_path / "mnist")):
        load_mnist()


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR),
                    reason=f"Fashion-MNIST not installed in {FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist)")
def test_installed_fashion_mnist_test_split_has_the_published_shape():
    x, y = load_fashion_mnist("test")
    assert x.shape == (10000, 1, 28, 28) and x.min() == -1.0 and x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 1000))  # 1000 test images per class


# ---------------------------------------------------------------- transforms

@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("shape,size", [((8, 8), (16, 16)), ((8, 8), (32, 32)), ((28, 28), (32, 32)),
                                        ((32, 32), (8, 8)), ((28, 28), (7, 7)), ((13, 7), (5, 11)),
                                        ((30, 45), (12, 18))])
def test_resize_matches_torch_bilinear_interpolate(shape, size, antialias):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3) + shape)
    expected = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode="bilinear",
                                               align_corners=False, antialias=antialias).numpy()
    np.testing.assert_allclose(transforms.resize(x, size, antialias=antialias), expected, atol=1e-12)


def test_resize_by_an_int_sets_the_shorter_side_and_keeps_the_aspect_ratio():
    x = np.zeros((1, 3, 300, 451), np.uint8)
    out = transforms.resize(x, 64)
    assert out.shape == (1, 3, 64, 96) and out.dtype == np.float32  # int(64 * 451 / 300) = 96


def test_digits_resized_equal_pils_bilinear_resize():
    from PIL import Image
    x8, _ = load_digits()
    x16, _ = load_digits(size=16)
    reference = np.stack([np.asarray(Image.fromarray(im, mode="F").resize((16, 16), Image.BILINEAR))
                          for im in x8[:50, 0]])
    np.testing.assert_allclose(x16[:50, 0], np.clip(reference, -1, 1), atol=1e-6)


def test_center_crop_takes_the_middle_window():
    x = np.arange(2 * 1 * 7 * 6, dtype=np.float32).reshape(2, 1, 7, 6)
    np.testing.assert_array_equal(transforms.center_crop(x, (3, 4)), x[:, :, 2:5, 1:5])
    np.testing.assert_array_equal(transforms.center_crop(x, 6), x[:, :, 0:6, 0:6])
    with pytest.raises(ValueError, match="larger than the images"):
        transforms.center_crop(x, 8)


def test_random_crop_takes_a_window_of_the_padded_image_seeded():
    x = np.random.default_rng(1).standard_normal((16, 2, 8, 8)).astype(np.float32)
    out = transforms.random_crop(x, 8, rng=3, padding=2, fill=-1.0)
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), constant_values=-1.0)
    offsets = []
    for image, crop in zip(padded, out):
        hits = [(t, l) for t in range(5) for l in range(5) if np.array_equal(image[:, t:t + 8, l:l + 8], crop)]
        assert hits, "every crop is a window of its padded image"
        offsets.append(hits[0])
    assert len(set(offsets)) > 1  # positions are drawn per image
    np.testing.assert_array_equal(out, transforms.random_crop(x, 8, rng=3, padding=2, fill=-1.0))
    assert not np.array_equal(out, transforms.random_crop(x, 8, rng=4, padding=2, fill=-1.0))


def test_hflip_equals_numpy_flip_and_random_flip_flips_some():
    x = np.random.default_rng(2).standard_normal((200, 3, 5, 4))
    np.testing.assert_array_equal(transforms.hflip(x), np.flip(x, axis=3))
    out = transforms.random_horizontal_flip(x, np.random.default_rng(0), p=0.5)
    flipped = np.array([np.array_equal(o, np.flip(i, axis=2)) for o, i in zip(out, x)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, x)])
    assert (flipped ^ kept).all() and 60 < flipped.sum() < 140  # Binomial(200, 1/2): mean 100, sd 7
    np.testing.assert_array_equal(out, transforms.random_horizontal_flip(x, np.random.default_rng(0), p=0.5))
    np.testing.assert_array_equal(transforms.random_horizontal_flip(x, 0, p=0.0), x)


def test_rescale_maps_the_value_range_onto_minus_one_one():
    out = transforms.rescale(np.array([0, 51, 255], np.uint8))
    np.testing.assert_allclose(out, [-1.0, 51 / 255 * 2 - 1, 1.0], atol=1e-7)
    assert out.dtype == np.float32
    np.testing.assert_allclose(transforms.rescale(np.array([0.0, 0.5, 1.0]), (0, 1)), [-1, 0, 1])


# ---------------------------------------------------------------- loader: seeds, drop_last, transforms


def test_loader_shuffles_reproducibly_per_seed_and_epoch():
    x = np.arange(100, dtype=np.float32)

    def epochs(seed, n=2):
        loader = DataLoader(x, batch_size=10, seed=seed)
        return [[b.numpy().tolist() for b in loader] for _ in range(n)]

    first, again = epochs(seed=5), epochs(seed=5)
    assert first == again
    assert first[0] != first[1]  # each epoch is a new permutation
    assert first != epochs(seed=6)
    resumed = DataLoader(x, batch_size=10, seed=5)
    resumed.epoch = 1  # a run resumed after one epoch sees the uninterrupted run's second epoch
    assert [b.numpy().tolist() for b in resumed] == first[1]
    unshuffled = [b.numpy().tolist() for b in DataLoader(x, batch_size=10, shuffle=False)]
    assert sum(unshuffled, []) == list(range(100))


@pytest.mark.parametrize("drop_last,lengths", [(True, [4, 4]), (False, [4, 4, 2])])
def test_loader_drop_last_drops_only_the_short_final_batch(drop_last, lengths):
    loader = DataLoader(np.arange(10), batch_size=4, drop_last=drop_last, shuffle=False)
    assert [len(b) for b in loader] == lengths and len(loader) == len(lengths)


def test_loader_transform_sees_numpy_batches_and_a_seeded_generator():
    x = np.random.default_rng(0).standard_normal((32, 1, 6, 6)).astype(np.float32)
    y = np.arange(32)

    def augment(batch, rng):
        assert isinstance(batch, np.ndarray) and isinstance(rng, np.random.Generator)
        return transforms.random_horizontal_flip(batch, rng)

    def run(seed):
        return [(bx.numpy(), by.numpy()) for bx, by in DataLoader(x, y, batch_size=8, seed=seed, transform=augment)]

    first, again = run(0), run(0)
    for (bx, by), (ax, ay) in zip(first, again):
        np.testing.assert_array_equal(bx, ax)
        np.testing.assert_array_equal(by, ay)
        for image, label in zip(bx, by):  # labels stay with their (possibly flipped) image
            assert np.array_equal(image, x[label]) or np.array_equal(image, x[label][..., ::-1])


# ---------------------------------------------------------------- scikit-image pictures


def test_skimage_pictures_are_float_nchw_in_unit_range():
    pytest.importorskip("skimage", reason="scikit-image is not installed (pip install scikit-image)")
    from minigan.data import load_image, load_lfw_subset
    astronaut = load_image("astronaut")
    assert astronaut.shape == (1, 3, 512, 512) and astronaut.dtype == np.float32
    assert astronaut.min() == -1.0 and astronaut.max() == 1.0
    assert load_image("coffee", size=64).shape == (1, 3, 64, 96)
    brick = load_image("brick", size=(32, 32), channels=3)
    assert brick.shape == (1, 3, 32, 32) and np.array_equal(brick[:, 0], brick[:, 2])
    gray = load_image("chelsea", channels=1)
    from skimage.data import chelsea
    np.testing.assert_allclose(gray[0, 0], (chelsea() @ [0.299, 0.587, 0.114]) / 255 * 2 - 1, atol=1e-5)
    faces, labels = load_lfw_subset()
    assert faces.shape == (100, 1, 25, 25) and (labels == 1).all() and -1 <= faces.min() < faces.max() <= 1
    both, labels = load_lfw_subset(size=32, include_non_faces=True)
    assert both.shape == (200, 1, 32, 32) and labels.sum() == 100
    with pytest.raises(ValueError, match="unknown image"):
        load_image("lena")


def test_read_idx_names_a_gzip_file_with_a_corrupt_deflate_stream(tmp_path):
    packed = bytearray(gzip.compress(_idx_bytes(np.arange(64, dtype=np.uint8).reshape(8, 8), 0x08)))
    packed[10:16] = b"\xff" * 6  # the deflate stream's first bytes: an invalid block type
    path = tmp_path / "corrupt.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(IDXError, match="corrupt.gz"):
        read_idx(path)
