"""minigan.data.load_image_folder: --data DIR for the image GANs, against Pillow and torch."""
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from PIL import Image

from minigan.data import DataNotFoundError, load_image_folder


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGAN_DATA", str(tmp_path / "cache"))


def save(path, array, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array, mode).save(path)


def torch_square(pixels, resolution):
    """torchvision's Resize(shorter side) + CenterCrop, written in torch: (C, H, W) floats."""
    c, h, w = pixels.shape
    size = (resolution, int(resolution * w / h)) if h <= w else (int(resolution * h / w), resolution)
    x = TF.interpolate(torch.from_numpy(pixels)[None].double(), size=size, mode="bilinear",
                       align_corners=False, antialias=True)[0]
    top, left = (x.shape[1] - resolution) // 2, (x.shape[2] - resolution) // 2
    return x[:, top:top + resolution, left:left + resolution].numpy()


def test_colour_pictures_are_resized_and_center_cropped_as_torch(tmp_path):
    rng = np.random.default_rng(0)
    wide = rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)
    tall = rng.integers(0, 256, (90, 33, 3), dtype=np.uint8)
    save(tmp_path / "d" / "a.png", wide)
    save(tmp_path / "d" / "sub" / "b.png", tall)
    images = load_image_folder(str(tmp_path / "d"), 16)
    assert images.shape == (2, 3, 16, 16) and images.dtype == np.float32
    for got, pixels in zip(images, (wide, tall)):  # sorted: a.png, then sub/b.png
        expected = torch_square(pixels.transpose(2, 0, 1).astype(np.float64), 16) / 127.5 - 1
        np.testing.assert_allclose(got, np.clip(expected, -1, 1), atol=1e-4)


def test_greyscale_and_colour_mix_and_alpha_is_composited_on_white(tmp_path):
    save(tmp_path / "a_grey.png", np.full((8, 8), 51, np.uint8))
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255  # red, half transparent over white -> (255, 127.5, 127.5)
    rgba[..., 3] = 128
    save(tmp_path / "b_rgba.png", rgba)
    colour = load_image_folder(str(tmp_path), 8)
    np.testing.assert_allclose(colour[0], 51 / 127.5 - 1, atol=1e-6)  # grey repeated on 3 channels
    np.testing.assert_allclose(colour[1, 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(colour[1, 1:], (255 * 127 / 255) / 127.5 - 1, atol=0.02)
    grey = load_image_folder(str(tmp_path), 8, channels=1)
    assert grey.shape == (2, 1, 8, 8)
    expected_luma = np.asarray(Image.fromarray(np.full((8, 8, 3), (255, 128, 128), np.uint8)).convert("L"))
    np.testing.assert_allclose(grey[1, 0], expected_luma / 127.5 - 1, atol=0.02)


def test_the_cache_is_used_and_renewed_when_the_folder_changes(tmp_path):
    folder = tmp_path / "d"
    save(folder / "a.jpg", np.full((10, 12, 3), 200, np.uint8))
    first = load_image_folder(str(folder), 4)
    cached = list((tmp_path / "cache" / "image_folder").glob("*.npz"))
    assert len(cached) == 1
    np.testing.assert_array_equal(load_image_folder(str(folder), 4), first)
    save(folder / "b.png", np.zeros((4, 4, 3), np.uint8))
    assert load_image_folder(str(folder), 4).shape[0] == 2


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "no PNG or JPEG"),
    (lambda p: (p / "notes.txt").write_text("x"), "no PNG or JPEG"),
    (lambda p: (p / "broken.png").write_bytes(b"not a png"), "cannot read"),
])
def test_bad_folders_get_errors_that_name_them(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises((DataNotFoundError, ValueError), match=message):
        load_image_folder(str(tmp_path), 8)


def test_a_missing_folder_and_bad_arguments_are_refused(tmp_path):
    with pytest.raises(DataNotFoundError, match="not a folder"):
        load_image_folder(str(tmp_path / "nowhere"), 8)
    save(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    for bad in (0, -4, 2.5, True):
        with pytest.raises(ValueError, match="resolution"):
            load_image_folder(str(tmp_path), bad)
    with pytest.raises(ValueError, match="channels"):
        load_image_folder(str(tmp_path), 4, channels=2)
