"""conv2d and conv_transpose2d against torch, to second order; Conv2d and ConvTranspose2d modules.

Both implementations: the fast layout that ``F.conv2d`` runs (functional/conv.py)
and the reference written to be read (functional/conv_reference.py).

Hypothesis draws the geometry (odd and non-square sizes, stride larger than the
kernel, dilation, groups, batch 1, one channel, tuple and 'same'/'valid' padding,
unbatched inputs, output_padding) and ``check_op`` compares, in float64, the
output, the gradients of input, weight and bias, and the second derivatives with
respect to all of them and to the incoming gradient — what a gradient penalty
(WGAN-GP, R1) differentiates.
"""
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings, strategies as st

import minigan as mg
from minigan.functional import conv as C, conv_reference as R
from minigan.testing import assert_close, check_op

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's note on its own speed

seeds = st.integers(0, 2**32 - 1)
fast = settings(max_examples=20, deadline=None)


@dataclass
class Case:
    """One drawn call: the shapes of input, weight and bias (or None) and the keyword arguments."""
    x: tuple
    w: tuple
    b: tuple
    kwargs: dict

    def arrays(self, seed, dtype=np.float64):
        rng = np.random.default_rng(seed)
        shapes = [self.x, self.w] + ([self.b] if self.b else [])
        return [rng.standard_normal(s).astype(dtype) for s in shapes]


def _int_or_pair(draw, lo, hi):
    """A size argument as torch takes it: an int, or a (h, w) tuple; returns (argument, (h, w))."""
    h, w = draw(st.integers(lo, hi)), draw(st.integers(lo, hi))
    if draw(st.booleans()):
        return h, (h, h)
    return (h, w), (h, w)


def _batched(draw, c, hw):
    n = draw(st.sampled_from((None, 1, 2)))  # None: an unbatched (C, H, W) input
    return ((c,) if n is None else (n, c)) + tuple(hw)


@st.composite
def conv2d_cases(draw):
    groups = draw(st.sampled_from((1, 1, 2, 3)))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 3)))
    stride_arg, stride = _int_or_pair(draw, 1, 3)
    dilation_arg, dilation = _int_or_pair(draw, 1, 2)
    kind = draw(st.sampled_from(("number", "valid") + (("same",) if stride == (1, 1) else ())))
    padding_arg, padding = _int_or_pair(draw, 0, 2) if kind == "number" else (kind, (0, 0))
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]  # the dilated kernel
    smallest = [1, 1] if kind == "same" else [max(1, s - 2 * p) for s, p in zip(span, padding)]
    hw = [draw(st.integers(m, m + 5)) for m in smallest]
    bias = (cout,) if draw(st.booleans()) else None
    kwargs = dict(stride=stride_arg, padding=padding_arg, dilation=dilation_arg, groups=groups)
    return Case(_batched(draw, cin, hw), (cout, cin // groups) + kernel, bias, kwargs)


@st.composite
def conv_transpose2d_cases(draw):
    groups = draw(st.sampled_from((1, 1, 2, 3)))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 3)))
    stride_arg, stride = _int_or_pair(draw, 1, 3)
    dilation_arg, dilation = _int_or_pair(draw, 1, 2)
    padding_arg, padding = _int_or_pair(draw, 0, 2)
    # torch's rule: output_padding < stride or < dilation, in each dim
    out_pad = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    # the smallest input whose output (H-1)s - 2p + d(k-1) + op + 1 is not empty
    smallest = [1 + max(0, -(-(2 * p - d * (k - 1) - o) // s))
                for s, p, d, k, o in zip(stride, padding, dilation, kernel, out_pad)]
    hw = [draw(st.integers(m, m + 4)) for m in smallest]
    bias = (cout,) if draw(st.booleans()) else None
    kwargs = dict(stride=stride_arg, padding=padding_arg, output_padding=out_pad,
                  groups=groups, dilation=dilation_arg)
    return Case(_batched(draw, cin, hw), (cin, cout // groups) + kernel, bias, kwargs)


OPS = {  # name: (minigan op, torch op, strategy of cases); the fast layout (F.conv2d's), then the reference
    "conv2d": (C.conv2d, TF.conv2d, conv2d_cases()),
    "conv_transpose2d": (C.conv_transpose2d, TF.conv_transpose2d, conv_transpose2d_cases()),
    "conv2d_reference": (R.conv2d, TF.conv2d, conv2d_cases()),
    "conv_transpose2d_reference": (R.conv_transpose2d, TF.conv_transpose2d, conv_transpose2d_cases()),
}


def _call(fn, case):
    return lambda x, w, b=None: fn(x, w, b, **case.kwargs)


# ---------------------------------------------------------------- values and derivatives


@pytest.mark.parametrize("name", OPS)
@fast
@given(data=st.data(), seed=seeds)
def test_matches_torch_with_first_and_second_derivatives(name, data, seed):
    mg_op, torch_op, cases = OPS[name]
    case = data.draw(cases, label="case")
    check_op(_call(mg_op, case), _call(torch_op, case), *case.arrays(seed), seed=seed, name=name,
             rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name", OPS)
@fast
@given(data=st.data(), seed=seeds)
def test_float32_stays_float32_and_matches_torch(name, data, seed):
    mg_op, torch_op, cases = OPS[name]
    case = data.draw(cases, label="case")
    arrays = case.arrays(seed, np.float32)
    xs = [mg.tensor(a, requires_grad=True) for a in arrays]
    txs = [torch.tensor(a) for a in arrays]
    y = _call(mg_op, case)(*xs)
    assert y.dtype == np.float32
    assert_close(y, _call(torch_op, case)(*txs), rtol=1e-4, atol=1e-5, name=name)
    grads = mg.grad(y.sum(), xs)
    assert all(g.dtype == np.float32 for g in grads)


def test_gradient_penalty_through_conv_and_transposed_conv_matches_torch():
    # WGAN-GP's shape: penalty = (||d critic(x) / dx|| - 1)^2, differentiated w.r.t. the weights
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 8))
    w1, w2 = rng.standard_normal((4, 3, 4, 3)), rng.standard_normal((4, 2, 3, 3))
    b1 = rng.standard_normal(4)

    def penalty(lib, x, w1, b1, w2):
        conv, convt = (C.conv2d, C.conv_transpose2d) if lib is mg else (TF.conv2d, TF.conv_transpose2d)
        h = conv(x, w1, b1, stride=2, padding=(1, 0))
        h = h * h.sigmoid()
        out = convt(h, w2, stride=2, output_padding=1, groups=2)
        (g,) = (mg.grad if lib is mg else torch.autograd.grad)((out * out).sum(), x, create_graph=True)
        return (((g * g).sum().sqrt() - 1.0) ** 2)

    ours = [mg.tensor(a, requires_grad=True) for a in (x, w1, b1, w2)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w1, b1, w2)]
    penalty(mg, *ours).backward()
    penalty(torch, *theirs).backward()
    for name, a, t in zip(("x", "w1", "b1", "w2"), ours, theirs):
        assert_close(a.grad, t.grad, rtol=1e-9, atol=1e-11, name=f"d penalty / d {name}")


def test_frozen_weight_skips_the_weight_gradient(monkeypatch):
    def fail(*args):
        raise AssertionError("weight gradient computed for a weight that needs none")

    monkeypatch.setattr(C.Conv2dGradWeight, "forward", fail)
    x = mg.randn(2, 3, 6, 6, dtype=np.float64, requires_grad=True)
    w = mg.randn(4, 3, 3, 3, dtype=np.float64)
    C.conv2d(x, w, stride=2).sum().backward()
    (g,) = mg.grad(C.conv_transpose2d(x, mg.randn(3, 2, 3, 3, dtype=np.float64), stride=2).sum(), x)
    assert x.grad.shape == x.shape and g.shape == x.shape


@pytest.mark.slow
@pytest.mark.parametrize("name, x_shape, w_shape", [("conv2d", (16, 64, 16, 16), (128, 64, 4, 4)),
                                                    ("conv_transpose2d", (16, 128, 8, 8), (128, 64, 4, 4))])
def test_dcgan_layer_matches_torch_in_float32(name, x_shape, w_shape):
    mg_op, torch_op, _ = OPS[name]
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(x_shape).astype(np.float32), 0.05 * rng.standard_normal(w_shape).astype(np.float32)
    xs, txs = [mg.tensor(a, requires_grad=True) for a in (x, w)], [torch.tensor(a, requires_grad=True) for a in (x, w)]
    y, ty = mg_op(*xs, stride=2, padding=1), torch_op(*txs, stride=2, padding=1)
    assert_close(y, ty, rtol=1e-4, atol=1e-4, name=name)
    u = rng.standard_normal(ty.shape).astype(np.float32)
    for g, tg in zip(mg.grad(y, xs, mg.tensor(u)), torch.autograd.grad(ty, txs, torch.tensor(u))):
        assert_close(g, tg, rtol=1e-4, atol=1e-3, name=f"{name} gradient")


# ---------------------------------------------------------------- bad arguments


def _bad(name, x, w, match, b=None, x_dtype=np.float32, w_dtype=np.float32, **kwargs):
    return pytest.param(name, x, w, b, x_dtype, w_dtype, kwargs, match, id=f"{name}-{match[:30]}")


BAD_ARGUMENTS = [
    _bad("conv2d", (1, 2, 5, 5), (2, 2, 3, 3), "non-positive stride", stride=0),
    _bad("conv2d", (1, 2, 5, 5), (2, 2, 3, 3), "negative padding", padding=(1, -1)),
    _bad("conv2d", (1, 2, 5, 5), (2, 2, 3, 3), "dilation should be greater than zero", dilation=0),
    _bad("conv2d", (1, 2, 5, 5), (2, 2, 3, 3), "non-positive groups", groups=0),
    _bad("conv2d", (1, 2, 5, 5), (2, 2, 3, 3), "'same' is not supported for strided", padding="same", stride=2),
    _bad("conv2d", (1, 2, 5, 5), (2, 2, 3, 3), "Invalid padding string", padding="full"),
    _bad("conv2d", (1, 2, 5, 5), (2, 2, 3, 3), "a list of 2 values", stride=(1, 2, 3)),
    _bad("conv2d", (1, 2, 5, 5), (2, 2, 3), r"4-D weight.*\[2, 2, 3\]"),
    _bad("conv2d", (5, 5), (2, 2, 3, 3), r"Expected 3D \(unbatched\) or 4D"),
    _bad("conv2d", (1, 4, 5, 5), (2, 2, 3, 3), r"expected input\[1, 4, 5, 5\] to have 2 channels"),
    _bad("conv2d", (1, 4, 5, 5), (3, 2, 3, 3), r"divisible by 2 at dimension 0.*\[3, 2, 3, 3\]", groups=2),
    _bad("conv2d", (1, 2, 2, 2), (2, 2, 3, 3), r"padded input size per channel: \(2 x 2\). Kernel size: "
         r"\(3 x 3\). Kernel size can't be greater than actual input size"),
    _bad("conv2d", (1, 2, 4, 4), (2, 2, 2, 2), r"\(4 x 4\). Kernel size: \(5 x 5\)", dilation=4),
    _bad("conv2d", (1, 2, 5, 5), (2, 2, 3, 3), r"input dtype float32 and weight dtype float64",
         w_dtype=np.float64),
    _bad("conv2d", (1, 2, 5, 5), (2, 2, 3, 3), r"bias to be 1-dimensional with 2 elements", b=(3,)),
    _bad("conv_transpose2d", (1, 2, 5, 5), (2, 2, 3, 3), "output padding must be smaller than either "
         "stride or dilation", stride=2, output_padding=2),
    _bad("conv_transpose2d", (1, 2, 5, 5), (2, 2, 3, 3), "output padding must be smaller",
         output_padding=(0, 1)),
    _bad("conv_transpose2d", (1, 2, 2, 2), (2, 2, 3, 3), "Output size is too small", padding=3),
    _bad("conv_transpose2d", (1, 3, 2, 2), (2, 2, 3, 3), r"expected input\[1, 3, 2, 2\] to have 2 channels"),
    _bad("conv_transpose2d", (1, 2, 5, 5), (2, 2, 3, 3), "must be an int or a tuple", padding="same"),
    _bad("conv_transpose2d", (1, 2, 5, 5), (2, 2, 3, 3), "non-positive stride", stride=(1, 0)),
    _bad("conv_transpose2d", (1, 2, 5, 5), (2, 2, 3, 3), r"bias to be 1-dimensional with 2 elements",
         b=(2, 1)),
    _bad("conv_transpose2d", (1, 2, 5, 5), (2, 2, 3, 3), r"negative padding is not supported", padding=(0, -1)),
    _bad("conv_transpose2d", (1, 2, 5, 5), (2, 2, 3, 3), r"negative output_padding", output_padding=-1),
    _bad("conv_transpose2d", (1, 2, 5, 5), (2, 2, 3, 3), "dilation should be greater than zero", dilation=0),
    _bad("conv_transpose2d", (1, 2, 5, 5), (2, 2, 3, 3), "non-positive groups", groups=0),
    _bad("conv_transpose2d", (1, 3, 5, 5), (3, 2, 3, 3), r"divisible by 2 at dimension 0.*\[3, 2, 3, 3\]",
         groups=2),
]


@pytest.mark.parametrize("name, x, w, b, x_dtype, w_dtype, kwargs, match", BAD_ARGUMENTS)
def test_bad_arguments_raise_like_torch(name, x, w, b, x_dtype, w_dtype, kwargs, match):
    mg_op, torch_op, _ = OPS[name]
    arrays = [np.ones(x, x_dtype), np.ones(w, w_dtype)] + ([np.ones(b, x_dtype)] if b else [])
    with pytest.raises((RuntimeError, TypeError, ValueError)):  # torch rejects them too
        torch_op(*[torch.tensor(a) for a in arrays], **kwargs)
    with pytest.raises((RuntimeError, TypeError), match=match) as info:
        mg_op(*[mg.tensor(a) for a in arrays], **kwargs)
    assert name in str(info.value)


# ---------------------------------------------------------------- GPU


@pytest.mark.gpu
@pytest.mark.skipif(not mg.cuda_available(), reason="needs CuPy and a GPU")
@pytest.mark.parametrize("name", OPS)
def test_cuda_matches_cpu(name):
    mg_op = OPS[name][0]
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 4, 9, 8)), rng.standard_normal((4, 2, 3, 3))
    kwargs = dict(stride=2, padding=1, groups=2)
    outs = {}
    for device in ("cpu", "cuda"):
        xs = [mg.tensor(a, device=device, requires_grad=True) for a in (x, w)]
        y = mg_op(*xs, **kwargs)
        outs[device] = [y] + list(mg.grad((y * y).sum(), xs))
    for a, b in zip(outs["cpu"], outs["cuda"]):
        assert_close(b.cpu(), a, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- modules


def _nn():
    from minigan.nn import conv
    return conv


MODULES = [  # (class name, positional args, keyword args), the same for minigan and torch
    ("Conv2d", (3, 8, 3), {}),
    ("Conv2d", (4, 6, (3, 2)), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)),
    ("Conv2d", (1, 1, 4), dict(padding="same", bias=False)),
    ("Conv2d", (2, 4, 3), dict(padding="valid", padding_mode="reflect")),
    ("ConvTranspose2d", (8, 4, 4), dict(stride=2, padding=1)),
    ("ConvTranspose2d", (6, 4, (3, 2)), dict(stride=(2, 3), output_padding=(1, 2), groups=2, bias=False)),
    ("ConvTranspose2d", (3, 2, 3), dict(dilation=2, output_padding=1)),
]


def _twins(name, args, kwargs):
    """The minigan module and a torch one holding the same float64 weights."""
    ours = getattr(_nn(), name)(*args, **kwargs, dtype=np.float64)
    theirs = getattr(torch.nn, name)(*args, **kwargs, dtype=torch.float64)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


@pytest.mark.parametrize("name, args, kwargs", MODULES)
def test_state_dict_keys_and_shapes_match_torch(name, args, kwargs):
    ours = getattr(_nn(), name)(*args, **kwargs)
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == \
           {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert all(p.dtype == np.float32 for p in ours.parameters())


@pytest.mark.parametrize("name, args, kwargs", MODULES)
def test_module_forward_and_gradients_match_torch(name, args, kwargs):
    ours, theirs = _twins(name, args, kwargs)
    x = np.random.default_rng(0).standard_normal((2, args[0], 7, 9))
    xs, txs = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = ours(xs), theirs(txs)
    assert_close(y, ty, rtol=1e-10, atol=1e-12, name=f"{name} output")
    y.sum().backward()
    ty.sum().backward()
    assert_close(xs.grad, txs.grad, rtol=1e-10, atol=1e-12, name=f"{name} input gradient")
    for key, p in theirs.named_parameters():
        assert_close(getattr(ours, key).grad, p.grad, rtol=1e-10, atol=1e-12, name=f"{name}.{key}.grad")


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding, stride", [(1, 1), ((2, 1), (2, 1)), ("same", 1), ("valid", 2)])
def test_padding_modes_match_torch(padding_mode, padding, stride):
    ours, theirs = _twins("Conv2d", (2, 3, (4, 3)),
                          dict(stride=stride, padding=padding, padding_mode=padding_mode))
    x = np.random.default_rng(1).standard_normal((2, 2, 6, 5))
    xs, txs = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = ours(xs), theirs(txs)
    assert_close(y, ty, rtol=1e-10, atol=1e-12, name=f"Conv2d({padding_mode}) output")
    (g,) = mg.grad((y * y).sum(), xs, create_graph=True)
    (tg,) = torch.autograd.grad((ty * ty).sum(), txs, create_graph=True)
    assert_close(g, tg, rtol=1e-10, atol=1e-12, name=f"Conv2d({padding_mode}) input gradient")
    (g * g).sum().backward()  # a gradient penalty through the padded convolution
    (tg * tg).sum().backward()
    assert_close(ours.weight.grad, theirs.weight.grad, rtol=1e-10, atol=1e-12,
                 name=f"Conv2d({padding_mode}) d penalty / d weight")


def test_unbatched_input_and_output_size_like_torch():
    ours, theirs = _twins("ConvTranspose2d", (3, 2, 3), dict(stride=2, padding=1))
    x = np.random.default_rng(2).standard_normal((3, 4, 5))
    for size in [(7, 9), (8, 10), (2, 8, 9)]:
        assert_close(ours(mg.tensor(x), output_size=size),
                     theirs(torch.tensor(x), output_size=size), rtol=1e-10, name=f"output_size={size}")
    for bad, match in [((9, 9), "output size"), ((1, 2, 8, 9), "2 or 3 elements")]:
        with pytest.raises(ValueError):
            theirs(torch.tensor(x), output_size=bad)
        with pytest.raises(ValueError, match=match):
            ours(mg.tensor(x), output_size=bad)


@pytest.mark.parametrize("name, args", [("Conv2d", (6, 8, (3, 5))), ("ConvTranspose2d", (6, 8, (3, 5)))])
def test_init_is_torchs_kaiming_uniform(name, args):
    mg.manual_seed(0)
    m = getattr(_nn(), name)(*args, groups=2)
    mg.manual_seed(0)
    again = getattr(_nn(), name)(*args, groups=2)
    fan_in = m.weight.shape[1] * 3 * 5  # torch's fan_in: weight.shape[1] * kH * kW
    bound = 1 / np.sqrt(fan_in)
    w, b = m.weight.numpy(), m.bias.numpy()
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.15 * bound  # U(-a, a) has std a / sqrt(3)
    np.testing.assert_array_equal(w, again.weight.numpy())


@pytest.mark.parametrize("name, args, kwargs, match", [
    ("Conv2d", (3, 4, 3), dict(padding_mode="mirror"), "padding_mode must be one of"),
    ("Conv2d", (3, 4, 3), dict(groups=2), "in_channels .* divisible by groups"),
    ("Conv2d", (4, 3, 3), dict(groups=2), "out_channels .* divisible by groups"),
    ("Conv2d", (4, 4, 3), dict(padding="same", stride=2), "'same' is not supported for strided"),
    ("Conv2d", (4, 4, 3), dict(padding="full"), "Invalid padding string"),
    ("ConvTranspose2d", (4, 4, 3), dict(padding_mode="reflect"), "only 'zeros' padding mode"),
])
def test_module_bad_arguments_raise_like_torch(name, args, kwargs, match):
    with pytest.raises(ValueError):
        getattr(torch.nn, name)(*args, **kwargs)
    with pytest.raises(ValueError, match=match):
        getattr(_nn(), name)(*args, **kwargs)
