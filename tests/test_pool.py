"""Pooling, resampling, padding and embedding against torch.nn.functional.

One table (``OPS``), one property: for each row hypothesis draws the input
shape (odd sides, batch 1, channel 1, non-square, 3-D unbatched inputs) and the
op's arguments (stride larger than the kernel, asymmetric and negative padding,
ceil_mode, non-integer scale factors), and ``minigan.testing.check_op`` compares

    forward      f(x)
    first        d<f(x), u>/dx                   for random u
    second       d<d<f(x), u>/dx, v>/d(x, u)     for random v (create_graph=True)

with torch in float64. Max pooling draws distinct values, so every window has
one argmax. The end of the file checks float32, the index rules at exact
scales, and that bad arguments fail with the op's name and the shapes.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import assume, strategies as st

import minigan as mg
from minigan.functional import pool as P
from minigan.functional.activation import prelu
from minigan.testing import Case, OpSpec as Op, arrays, check_op, op_property_tests


sides = st.integers(1, 7)


@st.composite
def image_shape(draw, min_side=1, unbatched=True):
    """(N, C, H, W), sometimes (C, H, W); N and C often 1, H != W often."""
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)),
             draw(st.integers(min_side, 7)), draw(st.integers(min_side, 7)))
    return shape[1:] if unbatched and draw(st.booleans()) else shape


# ---------------------------------------------------------------- cases


@st.composite
def pad_case(draw):
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    n = draw(st.integers(1, 3))  # how many trailing dims are padded
    ndim = n + draw(st.integers(1, 2)) if mode != "constant" else draw(st.integers(n, 4))
    shape = tuple(draw(st.integers(1, 5)) for _ in range(ndim))
    pads = []
    for size in reversed(shape[-n:]):  # torch's order: last dim first
        if mode == "constant":
            a = draw(st.integers(-size + 1, 3))
            b = draw(st.integers(-(size + a) + 1 if a < 0 else -size + 1, 3))
        else:
            # negative amounts crop first; what is left bounds the positive ones
            a, b = draw(st.integers(-(size // 2), 0)), draw(st.integers(-(size // 2), 0))
            left = size + a + b
            limit = {"reflect": min(size - 1, 3), "replicate": 3, "circular": min(left, 3)}[mode]
            if mode == "reflect" and size > 1:
                limit = min(limit, size - 1)
            if draw(st.booleans()):
                a = draw(st.integers(0, max(limit, 0)))
            if draw(st.booleans()):
                b = draw(st.integers(0, max(limit, 0)))
            assume(size + a + b >= 1)
        pads += [a, b]
    params = {"pad": tuple(pads), "mode": mode}
    if mode == "constant" and draw(st.booleans()):
        params["value"] = draw(st.floats(-2, 2))
    return Case((draw(arrays(shape)),), params)


@st.composite
def pool_case(draw, maximum=False):
    shape = draw(image_shape())
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    params = {"kernel_size": kernel if draw(st.booleans()) else kernel[0]}
    kernel = kernel if isinstance(params["kernel_size"], tuple) else (kernel[0],) * 2
    if draw(st.booleans()):
        params["stride"] = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    params["padding"] = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    params["ceil_mode"] = draw(st.booleans())
    dilation = (1, 1)
    if maximum:
        dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        params["dilation"] = dilation
        params["return_indices"] = draw(st.booleans())
    else:
        params["count_include_pad"] = draw(st.booleans())
        if draw(st.integers(0, 4)) == 0:
            params["divisor_override"] = draw(st.integers(1, 5))
    stride = params.get("stride", kernel)
    for side, k, s, p, d in zip(shape[-2:], kernel, stride, params["padding"], dilation):
        assume(side + 2 * p >= d * (k - 1) + 1)  # at least one window fits
        if maximum:  # torch's backward fails on a window wholly in the padding (see below)
            out = P._pool_out(side, k, s, p, d, params["ceil_mode"])
            taps = np.arange(out)[:, None] * s - p + np.arange(k) * d
            assume(((taps >= 0) & (taps < side)).any(axis=1).all())
    return Case((draw(arrays(shape, unique=maximum, min_value=-10, max_value=10)),), params)


@st.composite
def adaptive_case(draw):
    shape = draw(image_shape())
    h, w = shape[-2:]
    divisor = lambda n: st.sampled_from([d for d in range(1, n + 1) if n % d == 0])
    out = (draw(divisor(h) | st.integers(1, 8)), draw(divisor(w) | st.integers(1, 8) | st.none()))
    square = out[1] is not None and draw(st.booleans())  # an int means (out, out)
    return Case((draw(arrays(shape)),), {"output_size": out[0] if square else out})


def _torch_nearest_backward_is_adjoint(n, scale):
    """Whether torch's 1-D/3-D 'nearest' backward, given ``scale_factor``, sends each output pixel's
    gradient to the pixel its forward read: the forward reads floor(d / scale), the backward
    floor(d * n / out) (both in float32); they part where the two rounded differently."""
    out = int(n * scale)
    d = np.arange(out, dtype=np.float32)
    forward = np.minimum(np.floor(d * np.float32(1 / scale)), n - 1)
    backward = np.minimum(np.floor(d * np.float32(n / out)), n - 1)
    return bool(np.array_equal(forward, backward))


@st.composite
def interpolate_case(draw):
    mode = draw(st.sampled_from(["nearest", "nearest-exact", "linear", "bilinear", "trilinear"]))
    spatial = {"linear": 1, "bilinear": 2, "trilinear": 3}.get(mode) or draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + tuple(draw(sides) for _ in range(spatial))
    params = {"mode": mode}
    if mode not in ("nearest", "nearest-exact"):
        params["align_corners"] = draw(st.booleans())
    if draw(st.booleans()):
        size = tuple(draw(st.integers(1, 12)) for _ in range(spatial))
        params["size"] = size if spatial > 1 or draw(st.booleans()) else size[0]
    else:
        scale = st.sampled_from([0.5, 1.0, 2.0, 3.0]) | st.floats(0.3, 3.5)
        factors = tuple(draw(scale) for _ in range(spatial))
        for n, s in zip(shape[2:], factors):
            assume(int(n * s) >= 1)
        params["scale_factor"] = factors if spatial > 1 or draw(st.booleans()) else factors[0]
        if draw(st.integers(0, 3)) == 0:
            params["recompute_scale_factor"] = True
        elif mode == "nearest" and spatial != 2:
            # torch's 1-D and 3-D 'nearest' backward disagrees with its own forward where the source
            # pixels it reads differ from the ones the forward read (torch.autograd.gradcheck fails
            # there); that region is checked against a numerical gradient instead, below
            assume(all(_torch_nearest_backward_is_adjoint(n, s) for n, s in zip(shape[2:], factors)))
    return Case((draw(arrays(shape)),), params)


@st.composite
def shuffle_case(draw, unshuffle=False):
    r = draw(st.integers(1, 3))
    lead = tuple(draw(st.integers(1, 2)) for _ in range(draw(st.integers(0, 2))))
    c, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    shape = lead + ((c, h * r, w * r) if unshuffle else (c * r * r, h, w))
    return Case((draw(arrays(shape)),), {("downscale_factor" if unshuffle else "upscale_factor"): r})


@st.composite
def embedding_case(draw):
    rows, dim = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(draw(st.integers(1, 3))))
    indices = draw(arrays(shape, np.int64, min_value=0, max_value=rows - 1))
    padding_idx = draw(st.none() | st.integers(-rows, rows - 1))
    return Case((draw(arrays((rows, dim))), indices), {"padding_idx": padding_idx})


@st.composite
def prelu_case(draw):
    shape = tuple(draw(st.integers(1, 4)) for _ in range(draw(st.integers(1, 4))))
    channels = shape[1] if len(shape) >= 2 else 1
    slopes = channels if draw(st.booleans()) else 1
    return Case((draw(arrays(shape, avoid=(0.0,))), draw(arrays((slopes,)))))


def _embedding(weight, indices, **kw):
    return P.embedding(indices, weight, **kw)


def _torch_embedding(weight, indices, **kw):
    return TF.embedding(indices, weight, **kw)


OPS = [
    Op("pad", P.pad, TF.pad, pad_case()),
    Op("avg_pool2d", P.avg_pool2d, TF.avg_pool2d, pool_case()),
    Op("max_pool2d", P.max_pool2d, TF.max_pool2d, pool_case(maximum=True)),
    Op("adaptive_avg_pool2d", P.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, adaptive_case()),
    Op("interpolate", P.interpolate, TF.interpolate, interpolate_case()),
    Op("pixel_shuffle", P.pixel_shuffle, TF.pixel_shuffle, shuffle_case()),
    Op("pixel_unshuffle", P.pixel_unshuffle, TF.pixel_unshuffle, shuffle_case(unshuffle=True)),
    Op("embedding", _embedding, _torch_embedding, embedding_case()),
    Op("prelu", prelu, TF.prelu, prelu_case()),
]


test_op_matches_torch_forward_grad_and_second_derivative, test_op_matches_torch_on_many_more_examples = \
    op_property_tests(OPS, examples=20)


# ---------------------------------------------------------------- specific properties


FLOAT32_CALLS = [
    ("pad_reflect", lambda f, x: f.pad(x, (2, 1, 0, 3), mode="reflect")),
    ("avg_pool2d", lambda f, x: f.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)),
    ("max_pool2d", lambda f, x: f.max_pool2d(x, 3, 2, 1)),
    ("bilinear", lambda f, x: f.interpolate(x, scale_factor=1.5, mode="bilinear")),
    ("nearest", lambda f, x: f.interpolate(x, size=(7, 11))),
]


@pytest.mark.parametrize("call", [c for _, c in FLOAT32_CALLS], ids=[n for n, _ in FLOAT32_CALLS])
def test_float32_stays_float32_and_matches_torch(call):
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 5)).astype(np.float32)
    xm, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, yt = call(P, xm), call(TF, xt)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-6, atol=1e-6)
    (g,) = mg.grad((y * y).sum(), xm)
    (gt,) = torch.autograd.grad((yt * yt).sum(), xt)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g.numpy(), gt.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_in, n_out", [(3, 7), (5, 3), (7, 21), (10, 25), (64, 48), (33, 100)])
def test_nearest_uses_torchs_float32_floor_rule(n_in, n_out):
    # floor(dst * in / out) in float32 differs from exact integer arithmetic for some sizes
    x = np.arange(float(n_in)).reshape(1, 1, n_in)
    for kw in ({"size": n_out}, {"scale_factor": n_out / n_in}):
        y = P.interpolate(mg.tensor(x), **kw).numpy()
        np.testing.assert_array_equal(y, TF.interpolate(torch.tensor(x), **kw).numpy())


@pytest.mark.parametrize("spatial", [1, 2, 3])
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("n_in, scale", [(3, 1.3), (7, 1.1), (4, 2.0), (5, 2.1), (6, 0.5)])
def test_nearest_scale_factor_near_1_or_2_reads_torchs_pixels(spatial, mode, n_in, scale):
    # torch's 2-D 'nearest' copies when out == in and halves when out == 2 in; 1-D and 3-D do not
    x = np.arange(float(n_in)).reshape((1,) * (spatial + 1) + (n_in,))
    scales = (1.0,) * (spatial - 1) + (scale,)
    y = P.interpolate(mg.tensor(x), scale_factor=scales, mode=mode).numpy()
    np.testing.assert_array_equal(y, TF.interpolate(torch.tensor(x), scale_factor=scales, mode=mode).numpy())


def test_max_pool2d_gradient_goes_to_the_first_of_tied_maxima_as_torch():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = x[0, 0, 1, 2] = 1.0  # a tie inside one window
    check_op(lambda t: P.max_pool2d(t, 2, 1, return_indices=True),
             lambda t: TF.max_pool2d(t, 2, 1, return_indices=True), x, name="max_pool2d_ties")


def test_max_pool2d_window_wholly_in_the_padding_is_minus_inf_and_gets_no_gradient():
    # torch agrees on the value; its backward indexes out of bounds there
    x = np.arange(3.0).reshape(1, 1, 1, 3)
    xm = mg.tensor(x, requires_grad=True)
    y = P.max_pool2d(xm, 2, 2, padding=1, ceil_mode=True, dilation=(3, 1))
    np.testing.assert_array_equal(
        y.numpy(), TF.max_pool2d(torch.tensor(x), 2, 2, padding=1, ceil_mode=True, dilation=(3, 1)).numpy())
    assert np.isneginf(y.numpy()).all()
    (g,) = mg.grad(y.sum(), xm)
    np.testing.assert_array_equal(g.numpy(), 0.0)


def test_embedding_padding_row_gets_no_gradient_and_repeats_add_up():
    weight = mg.tensor(np.ones((4, 2)), dtype=mg.float64, requires_grad=True)
    P.embedding(mg.tensor(np.array([[1, 1, 0], [3, 1, 0]])), weight, padding_idx=0).sum().backward()
    np.testing.assert_array_equal(weight.grad.numpy(), [[0, 0], [3, 3], [0, 0], [1, 1]])


def test_embedding_max_norm_renormalizes_used_rows_in_place_as_torch():
    w = np.random.default_rng(0).standard_normal((5, 3)) * 3
    idx = np.array([0, 2, 2])
    weight, tweight = mg.tensor(w), torch.tensor(w)
    y = P.embedding(mg.tensor(idx), weight, max_norm=1.0)
    ty = TF.embedding(torch.tensor(idx), tweight, max_norm=1.0)
    np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-12)
    np.testing.assert_allclose(weight.numpy(), tweight.numpy(), rtol=1e-12)


def test_embedding_scale_grad_by_freq_first_derivative_matches_torch():
    # (torch's double backward ignores scale_grad_by_freq; ours is the exact adjoint, so
    # only first derivatives are compared)
    idx = np.array([[0, 2, 2], [2, 1, 0]])
    w = np.random.default_rng(1).standard_normal((4, 3))
    check_op(lambda t: P.embedding(mg.tensor(idx), t, scale_grad_by_freq=True),
             lambda t: TF.embedding(torch.tensor(idx), t, scale_grad_by_freq=True), w,
             gradgrad=False, name="embedding_scale_grad_by_freq")


def test_gradient_penalty_through_resampling_matches_torch():
    """WGAN-GP's ||d critic / dx|| through pad, pooling and upsampling, differentiated again."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 6, 6))
    w = rng.standard_normal((2, 1, 1))

    def critic(f, x, w):
        h = f.pad(x, (1, 1, 1, 1), mode="reflect")
        h = f.avg_pool2d(h * h, 2) + f.max_pool2d(h, 3, 2, 1)[..., :4, :4]
        h = f.interpolate(h, scale_factor=1.5, mode="bilinear") * w
        return (h * h).sum()

    def penalty(f, grad, x, w):
        (g,) = grad(critic(f, x, w), x, create_graph=True)
        return ((g * g).sum() - 1) ** 2

    xm, wm = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    penalty(P, mg.grad, xm, wm).backward()
    penalty(TF, torch.autograd.grad, xt, wt).backward()
    np.testing.assert_allclose(wm.grad.numpy(), wt.grad.numpy(), rtol=1e-9)
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.gpu
def test_ops_on_cupy_match_numpy():
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6))
    calls = FLOAT32_CALLS + [("pixel_shuffle", lambda f, x: f.pixel_shuffle(x[:, :1].repeat(1, 4, 1, 1), 2))]
    for name, call in calls:
        cpu = mg.tensor(x, requires_grad=True)
        gpu = mg.tensor(x, device="cuda", requires_grad=True)
        y_cpu, y_gpu = call(P, cpu), call(P, gpu)
        np.testing.assert_allclose(y_gpu.numpy(), y_cpu.numpy(), rtol=1e-10, err_msg=name)
        (g_cpu,) = mg.grad((y_cpu ** 2).sum(), cpu)
        (g_gpu,) = mg.grad((y_gpu ** 2).sum(), gpu)
        np.testing.assert_allclose(g_gpu.numpy(), g_cpu.numpy(), rtol=1e-10, err_msg=name)


# ---------------------------------------------------------------- layers


LAYERS = [
    ("AvgPool2d", lambda nn: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), (2, 3, 7, 6)),
    ("MaxPool2d", lambda nn: nn.MaxPool2d((2, 3), stride=(2, 1), padding=1, dilation=(1, 2)), (1, 2, 5, 7)),
    ("AdaptiveAvgPool2d", lambda nn: nn.AdaptiveAvgPool2d((3, None)), (2, 2, 7, 5)),
    ("Upsample_nearest", lambda nn: nn.Upsample(scale_factor=2), (1, 2, 3, 4)),
    ("Upsample_bilinear", lambda nn: nn.Upsample(size=(5, 9), mode="bilinear", align_corners=True),
     (2, 1, 3, 4)),
    ("ReflectionPad2d", lambda nn: nn.ReflectionPad2d(3), (1, 2, 5, 4)),
    ("ReflectionPad2d_asymmetric", lambda nn: nn.ReflectionPad2d((1, 0, 2, 3)), (2, 3, 4, 5)),
    ("ReplicationPad2d", lambda nn: nn.ReplicationPad2d((0, 2, 1, 3)), (1, 1, 3, 3)),
    ("ZeroPad2d", lambda nn: nn.ZeroPad2d((1, -1, 2, 0)), (2, 2, 3, 4)),
    ("ConstantPad2d", lambda nn: nn.ConstantPad2d(2, 0.5), (3, 4, 5)),
    ("PixelShuffle", lambda nn: nn.PixelShuffle(2), (2, 8, 3, 2)),
    ("PixelUnshuffle", lambda nn: nn.PixelUnshuffle(2), (2, 2, 4, 6)),
    ("PReLU", lambda nn: nn.PReLU(), (2, 3, 4)),
    ("PReLU_per_channel", lambda nn: nn.PReLU(3, init=0.1), (2, 3, 4, 2)),
]


@pytest.mark.parametrize("make, shape", [pytest.param(f, s, id=n) for n, f, s in LAYERS])
def test_layer_matches_its_torch_twin(make, shape):
    from minigan.nn import pool as layers
    layer, twin = make(layers), make(torch.nn).double()
    state = layer.state_dict()
    assert list(state) == list(twin.state_dict())
    layer.double()
    x = np.random.default_rng(0).standard_normal(shape)
    xm, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, yt = layer(xm), twin(xt)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-12)
    (y * y).sum().backward()
    (yt * yt).sum().backward()
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
    for (name, p), tp in zip(layer.named_parameters(), twin.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12, err_msg=name)


def test_embedding_layer_loads_torch_weights_and_keeps_the_padding_row_fixed():
    from minigan.nn import pool as layers
    layer, twin = layers.Embedding(6, 3, padding_idx=2), torch.nn.Embedding(6, 3, padding_idx=2).double()
    np.testing.assert_array_equal(layer.weight.numpy()[2], 0.0)  # initialized to zero, as torch
    layer.double().load_state_dict({k: v.detach() for k, v in twin.state_dict().items()})
    idx = np.array([[2, 0, 5], [1, 2, 0]])
    y, yt = layer(mg.tensor(idx)), twin(torch.tensor(idx))
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy())
    (y ** 2).sum().backward()
    (yt ** 2).sum().backward()
    np.testing.assert_allclose(layer.weight.grad.numpy(), twin.weight.grad.numpy())
    np.testing.assert_array_equal(layer.weight.grad.numpy()[2], 0.0)


def test_prelu_second_derivative_mixes_input_and_slope_as_torch():
    # d^2 y / dx da = 1 where x < 0: a penalty on d critic / dx trains the slope
    x = np.array([[-1.5, 0.5], [2.0, -0.25]])
    check_op(lambda t, a: prelu(t, a), lambda t, a: TF.prelu(t, a), x, np.array([0.2, 0.3]), name="prelu")


# ---------------------------------------------------------------- bad input fails loudly


def _t(*shape):
    return mg.tensor(np.ones(shape))


BAD_INPUT = [
    ("reflect_pad_wider_than_input", lambda: P.pad(_t(1, 1, 3, 3), (3, 0, 0, 0), mode="reflect"),
     RuntimeError, r"pad: reflect padding \(3, 0\) .*\(1, 1, 3, 3\)"),
    ("circular_pad_wraps_twice", lambda: P.pad(_t(1, 2, 3), (4, 0), mode="circular"),
     RuntimeError, r"pad: circular .*\(1, 2, 3\)"),
    ("pad_odd_length", lambda: P.pad(_t(2, 3), (1,)), RuntimeError, r"pad: padding length .*2"),
    ("pad_unknown_mode", lambda: P.pad(_t(1, 2, 3), (1, 1), mode="mirror"), NotImplementedError,
     r"pad: unknown mode 'mirror'"),
    ("reflect_pad_needs_batch_or_channel_dim", lambda: P.pad(_t(3), (1, 1), mode="reflect"),
     NotImplementedError, r"pad: reflect .*\(3,\)"),
    ("avg_pool2d_padding_over_half_kernel", lambda: P.avg_pool2d(_t(1, 1, 5, 5), 2, padding=2),
     RuntimeError, r"avg_pool2d: pad should be at most half of kernel size"),
    ("max_pool2d_window_larger_than_input", lambda: P.max_pool2d(_t(1, 1, 2, 2), 3), RuntimeError,
     r"max_pool2d: input of shape \(1, 1, 2, 2\) is too small"),
    ("avg_pool2d_2d_input", lambda: P.avg_pool2d(_t(4, 4), 2), RuntimeError, r"avg_pool2d: .*\(4, 4\)"),
    ("interpolate_size_and_scale", lambda: P.interpolate(_t(1, 1, 4), size=3, scale_factor=2.0),
     ValueError, r"interpolate: only one of size or scale_factor"),
    ("bilinear_on_3d_input", lambda: P.interpolate(_t(1, 1, 4), size=3, mode="bilinear"),
     NotImplementedError, r"interpolate: .*\(1, 1, 4\).*bilinear"),
    ("nearest_with_align_corners", lambda: P.interpolate(_t(1, 1, 4), size=3, align_corners=True),
     ValueError, r"interpolate: align_corners"),
    ("pixel_shuffle_channels_not_divisible", lambda: P.pixel_shuffle(_t(1, 5, 2, 2), 2), RuntimeError,
     r"pixel_shuffle: .*\(1, 5, 2, 2\).*4"),
    ("pixel_unshuffle_size_not_divisible", lambda: P.pixel_unshuffle(_t(1, 1, 3, 4), 2), RuntimeError,
     r"pixel_unshuffle: .*\(1, 1, 3, 4\)"),
    ("pixel_shuffle_zero_factor", lambda: P.pixel_shuffle(_t(1, 4, 2, 2), 0), RuntimeError,
     r"pixel_shuffle: expected a positive upscale_factor, got 0 .*\(1, 4, 2, 2\)"),
    ("pixel_unshuffle_zero_factor", lambda: P.pixel_unshuffle(_t(1, 1, 4, 4), 0), RuntimeError,
     r"pixel_unshuffle: expected a positive downscale_factor, got 0 .*\(1, 1, 4, 4\)"),
    ("adaptive_avg_pool2d_empty_input", lambda: P.adaptive_avg_pool2d(_t(1, 1, 0, 3), 2), RuntimeError,
     r"adaptive_avg_pool2d: .*non-zero height and width.*\(1, 1, 0, 3\)"),
    ("avg_pool2d_negative_padding", lambda: P.avg_pool2d(_t(1, 1, 5, 5), 3, padding=-1), RuntimeError,
     r"avg_pool2d: .*padding \(-1, -1\) non-negative"),
    ("max_pool2d_zero_stride", lambda: P.max_pool2d(_t(1, 1, 5, 5), 2, stride=0), RuntimeError,
     r"max_pool2d: .*stride \(0, 0\).*must be positive"),
    ("interpolate_output_size_zero", lambda: P.interpolate(_t(1, 1, 3, 3), scale_factor=0.1), ValueError,
     r"interpolate: input of spatial size \(3, 3\) and output size \(0, 0\) must be positive"),
    ("embedding_index_out_of_range", lambda: P.embedding(mg.tensor(np.array([0, 5])), _t(5, 2)),
     IndexError, r"embedding: index out of range .*\(5, 2\)"),
    ("prelu_channels_mismatch", lambda: prelu(_t(2, 3), _t(4)), RuntimeError,
     r"prelu: weight of shape \(4,\) .*\(2, 3\) has 3 channels"),
    ("embedding_float_indices", lambda: P.embedding(_t(3), _t(5, 2)), RuntimeError,
     r"embedding: expected integer indices"),
]


@pytest.mark.parametrize("call, error, message", [pytest.param(*row[1:], id=row[0]) for row in BAD_INPUT])
def test_bad_input_raises_naming_the_op_and_shapes(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("shape, scale_factor", [((1, 2, 2), (1.25,)), ((1, 1, 2, 2, 2), (0.5, 0.5, 1.25)),
                                                 ((2, 1, 4, 3, 2), (1.1, 1.0, 1.4)), ((1, 1, 2), (2.25,))])
def test_nearest_gradient_where_torchs_backward_reads_other_pixels_matches_a_numerical_gradient(
        shape, scale_factor):
    """Where torch's 1-D/3-D 'nearest' backward is not the adjoint of its forward, minigan's is:
    the forward equals torch's, and both derivatives equal finite differences."""
    assert not all(_torch_nearest_backward_is_adjoint(n, f) for n, f in zip(shape[2:], scale_factor))
    x = np.random.default_rng(0).standard_normal(shape)
    op = lambda t: P.interpolate(t, scale_factor=scale_factor, mode="nearest")  # noqa: E731
    expected = TF.interpolate(torch.tensor(x), scale_factor=scale_factor, mode="nearest")
    np.testing.assert_array_equal(op(mg.tensor(x)).numpy(), expected.numpy())
    assert mg.gradcheck(op, (mg.tensor(x, requires_grad=True),))
    assert mg.gradgradcheck(op, (mg.tensor(x, requires_grad=True),))
