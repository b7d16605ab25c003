"""Learning to generate chairs: the renderer against closed forms and an independent
rasterization, the generator against its torch twin (``tests/twins/train_chairs_torch.py``:
forward values, gradients, Adam steps), the uconv against unpooling + convolution written
out in torch, the loss against its formula, bad inputs, and the example by a smoke run.
"""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from matplotlib.path import Path

import minigan as mg
from minigan import nn, optim
from minigan.data import shapes3d
from minigan.data.shapes3d import AMBIENT, DIFFUSE, EXTENT, LIGHT, box, cylinder, merge, render
from minigan.models import chairs
from minigan.testing import assert_params_match, load_into_twin
from test_examples import CONTRACT, assert_resume_continues_the_run, run
from twins import train_chairs_torch as twin

torch.set_num_threads(1)


def _pixel_area(size):
    """World units^2 per pixel at zoom 1."""
    return (2 * EXTENT / size) ** 2


# ---------------------------------------------------------------- the renderer


def _reference_projection(points, azimuth, elevation, size):
    """Turn the world by -azimuth about y, then tilt it by the elevation about x (the camera looks
    along -z from above), written with rotation matrices rather than the camera's basis vectors;
    -> pixel coordinates (column, row)."""
    a, e = np.deg2rad(azimuth), np.deg2rad(elevation)
    turn = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])
    tilt = np.array([[1, 0, 0], [0, np.cos(e), -np.sin(e)], [0, np.sin(e), np.cos(e)]])
    cam = points @ (tilt @ turn).T
    scale = size / 2 / EXTENT
    return np.stack([cam[..., 0] * scale + size / 2, size / 2 - cam[..., 1] * scale], -1)


@pytest.mark.parametrize("name, azimuth, elevation", [("armchair", 40, 20), ("arc lamp", 200, 30),
                                                      ("café table", 75, 10)])
def test_the_mask_is_the_set_of_pixels_some_triangle_covers(name, azimuth, elevation):
    """Each pixel centre inside some projected triangle (matplotlib's point-in-polygon test on an
    independent projection) is in the mask, and no other pixel."""
    mesh = dict((n, m) for n, _, m in shapes3d.INSTANCES)[name]
    size = 32
    image, mask = render(mesh, azimuth, elevation, size)
    corners = _reference_projection(mesh.triangles, azimuth, elevation, size)
    centres = np.stack(np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5), -1).reshape(-1, 2)
    covered = np.zeros(len(centres), bool)
    for tri in corners:
        covered |= Path(tri).contains_points(centres)
    np.testing.assert_array_equal(mask[0].ravel().astype(bool), covered)
    # the background is black exactly where the mask is empty
    assert (image[:, mask[0] == 0] == -1).all() and (image[:, mask[0] == 1].max(0) > -1).all()
    assert mask.dtype == image.dtype == np.float32 and set(np.unique(mask)) <= {0.0, 1.0}


def _centres_inside(half_width_px, size):
    """How many pixel centres k + 0.5 (k = 0 .. size-1) lie strictly within half_width_px of size / 2."""
    return 2 * int(np.ceil(half_width_px - 0.5))


def test_a_box_seen_from_the_front_covers_the_pixel_centres_of_its_rectangle():
    size, w, h = 64, 1.13, 0.71
    _, mask = render(box((0, 0, 0), (w, h, 0.5), (1, 1, 1)), 0, 0, size)
    scale = size / 2 / EXTENT
    assert mask.sum() == _centres_inside(w / 2 * scale, size) * _centres_inside(h / 2 * scale, size)


@pytest.mark.parametrize("azimuth, elevation", [(30, 20), (123, 35), (250, 5)])
def test_a_boxs_silhouette_has_the_area_of_its_projection(azimuth, elevation):
    """A convex body's orthographic shadow has area sum over its faces of |n . d| A / 2: for a box,
    sum over the three axes of |d_axis| times the face across that axis."""
    size, dims = 128, np.array([0.9, 0.6, 0.4])
    _, mask = render(box((0, 0, 0), dims, (1, 1, 1)), azimuth, elevation, size)
    a, e = np.deg2rad(azimuth), np.deg2rad(elevation)
    d = np.abs([np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)])
    faces = np.array([dims[1] * dims[2], dims[0] * dims[2], dims[0] * dims[1]])
    expected = (d * faces).sum() / _pixel_area(size)
    assert mask.sum() == pytest.approx(expected, rel=0.02)  # the rim's pixels: ~1% at this size


def test_a_cylinder_seen_from_above_is_its_polygon():
    size, r, n = 128, 0.8, 12
    _, mask = render(cylinder((0, -0.3, 0), r, 0.6, (1, 1, 1), segments=n), 10, 90, size)
    polygon = n / 2 * r ** 2 * np.sin(2 * np.pi / n)
    assert mask.sum() == pytest.approx(polygon / _pixel_area(size), rel=0.02)


def test_the_nearer_box_hides_the_farther_one_whatever_their_order():
    """The z-buffer, not the order of the triangles, decides: seen from the front, a red box in
    front of a blue one shows its front face, flat-shaded by n . l with n = +z."""
    red, blue = box((0, 0, 0.5), (0.4, 0.4, 0.2), (0.9, 0.1, 0.1)), box((0, 0, 0), (1.2, 1.2, 0.4), (0.1, 0.1, 0.9))
    centre = np.array([0.9, 0.1, 0.1]) * (AMBIENT + DIFFUSE * LIGHT[2]) * 2 - 1
    for mesh in (merge(red, blue), merge(blue, red)):
        image, _ = render(mesh, 0, 0, 32)
        np.testing.assert_allclose(image[:, 16, 16], centre, rtol=1e-6)
        np.testing.assert_allclose(image[:, 8, 16], np.array([0.1, 0.1, 0.9]) * (AMBIENT + DIFFUSE * LIGHT[2]) * 2 - 1,
                                   rtol=1e-6)


def test_a_full_turn_gives_the_same_image():
    mesh = shapes3d.INSTANCES[2][2]
    for azimuth in (0, 75, 200):
        a, b = render(mesh, azimuth, 20), render(mesh, azimuth + 360, 20)
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_allclose(a[0], b[0], atol=1e-6)
    # and a turn changes it (the views differ)
    assert np.abs(render(mesh, 0, 20)[0] - render(mesh, 90, 20)[0]).mean() > 0.05


def test_held_out_azimuths_are_disjoint_from_training_and_flanked_by_it():
    train, held = set(shapes3d.TRAIN_AZIMUTHS), set(shapes3d.HELD_OUT_AZIMUTHS)
    assert not train & held and train | held == set(shapes3d.AZIMUTHS) and len(held) == 6
    assert all((a - 15) % 360 in train and (a + 15) % 360 in train for a in held)
    data = shapes3d.load_shapes3d(16)
    n = len(shapes3d.INSTANCES) * len(shapes3d.AZIMUTHS) * len(shapes3d.ELEVATIONS)
    assert data.images.shape == (n, 3, 16, 16) and data.masks.shape == (n, 1, 16, 16)
    assert set(data.azimuth[~data.train]) == held and set(data.azimuth[data.train]) == train
    assert data.train.sum() == len(shapes3d.INSTANCES) * len(train) * len(shapes3d.ELEVATIONS)
    assert set(data.category) == {0, 1, 2} and data.images.min() >= -1 and data.images.max() <= 1
    assert not data.images.flags.writeable  # rendered once per process, shared: nobody may change it


def test_the_transformation_parameters_zoom_shift_and_brighten():
    mesh = box((0, 0, 0), (0.8, 0.8, 0.8), (0.5, 0.5, 0.5))
    plain, mask = render(mesh, 0, 0, 64)
    _, zoomed = render(mesh, 0, 0, 64, zoom=0.5)
    scale = 64 / 2 / EXTENT
    assert mask.sum() == _centres_inside(0.4 * scale, 64) ** 2
    assert zoomed.sum() == _centres_inside(0.4 * scale * 0.5, 64) ** 2
    _, shifted = render(mesh, 0, 0, 64, shift=(0.25, 0.0))  # a quarter of the width: 16 pixels right
    np.testing.assert_array_equal(shifted[0, :, 16:], mask[0, :, :-16])
    bright, _ = render(mesh, 0, 0, 64, brightness=1.5)
    np.testing.assert_allclose((bright[:, 32, 32] + 1) / 2, 1.5 * (plain[:, 32, 32] + 1) / 2, rtol=1e-6)


# ---------------------------------------------------------------- the network against torch


def _models(n_classes=5, n_transform=0, width=8, channels=(8, 4), seed=0):
    mg.manual_seed(seed)
    G = chairs.Generator(n_classes, n_transform, width, channels)
    tG = load_into_twin(G, twin.Generator(n_classes, n_transform, width, channels))
    return G.double(), tG.double()


def _inputs(n=4, n_classes=5, n_transform=0, seed=1):
    rng = np.random.default_rng(seed)
    c = chairs.class_code(rng.integers(0, n_classes, n), n_classes, rng.integers(0, n_classes, n), rng.random(n))
    v = chairs.view_code(rng.uniform(0, 360, n), rng.uniform(0, 40, n))
    theta = rng.uniform(-0.2, 0.2, (n, n_transform)) if n_transform else None
    return c.astype(np.float64), v.astype(np.float64), theta


def test_uconv_is_unpooling_then_a_5x5_convolution():
    """The paper's uconv, written out in torch: each value to the top-left of a 2x2 block of zeros,
    then conv2d with the kernel flipped and its channel axes swapped, 'same' padding."""
    mg.manual_seed(3)
    layer = chairs.uconv(3, 2).double()
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    unpooled = torch.zeros(2, 3, 8, 10, dtype=torch.float64)
    unpooled[:, :, ::2, ::2] = torch.tensor(x)
    w = torch.tensor(layer.weight.numpy()).flip(2, 3).transpose(0, 1)
    expected = TF.conv2d(unpooled, w, torch.tensor(layer.bias.numpy()), padding=2)
    np.testing.assert_allclose(layer(mg.tensor(x)).numpy(), expected.numpy(), rtol=1e-10, atol=1e-12)


def test_state_dict_keys_match_the_twins():
    for n_transform in (0, 4):
        G, tG = _models(n_transform=n_transform)
        assert list(G.state_dict()) == list(tG.state_dict())


@pytest.mark.parametrize("n_transform", [0, 4])
def test_generator_forward_and_gradients_match_torch(n_transform):
    G, tG = _models(n_transform=n_transform)
    c, v, theta = _inputs(n_transform=n_transform)
    cm, ct = mg.tensor(c, requires_grad=True), torch.tensor(c, requires_grad=True)
    vm, vt = mg.tensor(v, requires_grad=True), torch.tensor(v, requires_grad=True)
    args = () if theta is None else (mg.tensor(theta),)
    targs = () if theta is None else (torch.tensor(theta),)
    (image, mask), (timage, tmask) = G(cm, vm, *args), tG(ct, vt, *targs)
    assert image.shape == (4, 3, 16, 16) and mask.shape == (4, 1, 16, 16)
    np.testing.assert_allclose(image.numpy(), timage.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mask.numpy(), tmask.detach().numpy(), rtol=1e-10, atol=1e-12)
    rng = np.random.default_rng(2)
    wi, wm = rng.standard_normal(image.shape), rng.standard_normal(mask.shape)
    ((image * mg.tensor(wi)).sum() + (mask * mg.tensor(wm)).sum()).backward()
    ((timage * torch.tensor(wi)).sum() + (tmask * torch.tensor(wm)).sum()).backward()
    assert_params_match(G, tG, rtol=1e-8, atol=1e-10, grads=True)
    np.testing.assert_allclose(cm.grad.numpy(), ct.grad.numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(vm.grad.numpy(), vt.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_generator_matches_torch_in_float32():
    mg.manual_seed(4)
    G = chairs.Generator(12, 0, 32, (16, 8, 4))
    tG = load_into_twin(G, twin.Generator(12, 0, 32, (16, 8, 4)))
    c, v, _ = _inputs(n_classes=12)
    image, mask = G(mg.tensor(c.astype(np.float32)), mg.tensor(v.astype(np.float32)))
    with torch.no_grad():
        timage, tmask = tG(torch.tensor(c, dtype=torch.float32), torch.tensor(v, dtype=torch.float32))
    assert image.shape == (4, 3, 32, 32)
    np.testing.assert_allclose(image.numpy(), timage.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(mask.numpy(), tmask.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("n_transform", [0, 4])
def test_training_steps_match_torch(n_transform):
    """Three Adam steps on different batches: the losses, the gradients and the parameters agree."""
    G, tG = _models(n_transform=n_transform)
    adam = dict(lr=5e-4, betas=(0.9, 0.999))
    opt, topt = optim.Adam(G.parameters(), **adam), torch.optim.Adam(tG.parameters(), **adam)
    for step in range(3):
        c, v, theta = _inputs(n_transform=n_transform, seed=10 + step)
        rng = np.random.default_rng(step)
        image, mask = rng.uniform(-1, 1, (4, 3, 16, 16)), (rng.random((4, 1, 16, 16)) > 0.5).astype(np.float64)
        ours = chairs.train_step(G, opt, mg.tensor(c), mg.tensor(v), None if theta is None else mg.tensor(theta),
                                 mg.tensor(image), mg.tensor(mask))
        theirs = twin.train_step(tG, topt, torch.tensor(c), torch.tensor(v),
                                 None if theta is None else torch.tensor(theta), torch.tensor(image),
                                 torch.tensor(mask))
        for key in theirs:
            assert ours[key] == pytest.approx(theirs[key], rel=1e-9), f"step {step}: {key}"
        assert_params_match(G, tG, rtol=1e-8, atol=1e-10, grads=True)
        assert_params_match(G, tG, rtol=1e-7, atol=1e-10)


def test_the_loss_is_lambda_times_the_image_error_plus_the_mask_error():
    rng = np.random.default_rng(5)
    image, target, mask, target_mask = (rng.standard_normal((2, c, 4, 4)) for c in (3, 3, 1, 1))
    total, rgb, segm = chairs.generator_loss(*map(mg.tensor, (image, mask, target, target_mask)), lam=10.0)
    assert rgb.item() == pytest.approx(((image - target) ** 2).mean(), rel=1e-12)
    assert segm.item() == pytest.approx(((mask - target_mask) ** 2).mean(), rel=1e-12)
    assert total.item() == pytest.approx(10 * rgb.item() + segm.item(), rel=1e-12)


def test_the_architecture_is_the_papers_layout():
    """An FC-1, FC-2 stream per input, FC-3 .. FC-5 to a 4x4 map, uconvs (5x5, stride 2) to the
    image and a separate stream to the mask, leaky ReLUs of slope 0.3, linear outputs."""
    G = chairs.Generator(809, 4, 512, (256, 128, 64, 32, 16))
    assert G.image_size == 128
    linears = [m for m in G.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (809, 512), (512, 512), (4, 512), (512, 512), (4, 512), (512, 512), (1536, 1024), (1024, 1024),
        (1024, 256 * 16)]
    for stream, outputs in ((G.image_stream, [128, 64, 32, 16, 3]), (G.mask_stream, [64, 32, 16, 8, 1])):
        ups = [m for m in stream if isinstance(m, nn.ConvTranspose2d)]
        assert [m.out_channels for m in ups] == outputs
        assert all(m.kernel_size == (5, 5) and m.stride == (2, 2) for m in ups)
        assert not isinstance(stream[-1], nn.LeakyReLU)
    assert {m.negative_slope for m in G.modules() if isinstance(m, nn.LeakyReLU)} == {0.3}


def test_the_input_codes():
    a = np.array([0.0, 90.0, 15.0])
    np.testing.assert_allclose(chairs.view_code(a + 360, [10, 20, 30]), chairs.view_code(a, [10, 20, 30]), atol=1e-6)
    np.testing.assert_allclose(chairs.view_code([90.0], [0.0]), [[1, 0, 0, 1]], atol=1e-7)
    mixed = chairs.class_code([0, 1], 3, mix_with=[2, 1], alpha=0.25)
    np.testing.assert_allclose(mixed, [[0.75, 0, 0.25], [0, 1, 0]])


def test_bad_inputs_name_what_was_wrong():
    with pytest.raises(ValueError, match=r"integer instances \(N,\) in \[0, 3\)"):
        chairs.class_code([0, 3], 3)
    with pytest.raises(ValueError, match="same shape"):
        chairs.view_code([0, 1], [0])
    G = chairs.Generator(3, 0, 4, (4,))
    with pytest.raises(ValueError, match=r"class vectors \(N, 3\), got \(2, 4\)"):
        G(mg.zeros(2, 4), mg.zeros(2, 4))
    with pytest.raises(ValueError, match=r"views \(2, 4\)"):
        G(mg.zeros(2, 3), mg.zeros(2, 2))
    with pytest.raises(ValueError, match="takes no transformation"):
        G(mg.zeros(2, 3), mg.zeros(2, 4), mg.zeros(2, 4))
    with pytest.raises(ValueError, match=r"transformation parameters \(2, 4\), got None"):
        chairs.Generator(3, 4, 4, (4,))(mg.zeros(2, 3), mg.zeros(2, 4))
    with pytest.raises(ValueError, match="channels >= 2"):
        chairs.Generator(3, 0, 4, ())
    with pytest.raises(ValueError, match="size must be at least 8"):
        shapes3d.load_shapes3d(4)


# ---------------------------------------------------------------- the example


TINY = ("--batch-size", 8, "--width", 8, "--conv-width", 8, "--image-size", 16)


def test_example_writes_the_contract_files_and_scores(tmp_path):
    metrics = run("chairs", tmp_path, "--steps", 3, *TINY, "--augment", 1, "--transfer")
    for f in CONTRACT + ["samples.npz", "interpolation.png", "azimuth.png"]:
        assert (tmp_path / f).stat().st_size > 0, f
    saved = json.loads((tmp_path / "metrics.json").read_text())
    # --transfer: six instances are trained at every azimuth, the other six are scored
    assert saved["steps"] == 3 and saved["heldout_views"] == 6 * 6 * 3 and saved["augment"] == 1
    assert saved["train_views"] == 6 * 18 * 3 + 6 * 24 * 3
    assert saved["mean_image_mse"] > saved["nearest_view_mse"] > saved["neighbours_mean_mse"] > 0
    assert 0 <= saved["heldout_mask_iou"] <= 1 and metrics["heldout_mse"] == saved["heldout_mse"]
    assert saved["transformed_heldout_mse"] > 0 and saved["transformed_heldout_mse_theta_0"] > 0  # --augment
    samples = np.load(tmp_path / "samples.npz")
    assert samples["x"].shape == (1000, 3, 16, 16) and samples["x"].dtype == np.float32
    assert samples["x"].min() >= -1 and samples["x"].max() <= 1 and samples["y"].max() == 11


def test_example_resumes_where_it_stopped(tmp_path):
    assert_resume_continues_the_run("chairs", tmp_path, 6, 3, TINY + ("--checkpoint-every", 2), ["G"])
