"""The "cuda" device without a GPU: minigan on CuPy arrays, with CuPy played by ``fake_cupy``.

The stand-in computes with NumPy, so a model step on "cuda" must give the CPU's
numbers; what it adds is CuPy's refusals (a host array in a device expression,
a NumPy-only function, a 0-d reduction used as an int). These tests run the
ops (forward, backward, double backward), two training steps, every example
and a resumed run on that device, and check the stand-in itself refuses what
CuPy refuses, so that a pass here means something.
"""
import json
import os

import numpy as np
import pytest

import minigan as mg
import minigan.nn.functional as F
from minigan import backend
from minigan.data import FASHION_MNIST_DIR
from minigan.models import dcgan, wgan
from test_examples import CONTRACT, assert_resume_continues_the_run, run

# ---------------------------------------------------------------- the stand-in keeps CuPy's rules


def test_stand_in_refuses_what_cupy_refuses(fake_cuda):
    a = fake_cuda.arange(6.0).reshape(2, 3)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    with pytest.raises(TypeError, match="NumPy array"):
        a + np.ones(3)
    with pytest.raises(TypeError, match="NumPy array"):
        fake_cuda.maximum(a, np.zeros((2, 3)))
    total = a.sum()
    assert isinstance(total, fake_cuda.ndarray) and total.shape == () and float(total) == 15
    with pytest.raises(TypeError):
        range(a.sum())
    assert not hasattr(fake_cuda, "errstate") and not hasattr(a, "resize")
    assert np.array_equal(fake_cuda.asnumpy(np.exp(a)), np.exp(np.arange(6.0).reshape(2, 3)))


def test_device_generator_state_restores_the_stream(fake_cuda):
    mg.manual_seed(3)
    first = mg.randn(4, 5, device="cuda").numpy()
    state = backend.get_rng_state("cuda")
    second = mg.randn(4, 5, device="cuda").numpy()
    third = mg.rand(7, device="cuda").numpy()
    backend.set_rng_state(state, "cuda")
    assert np.array_equal(mg.randn(4, 5, device="cuda").numpy(), second)
    assert np.array_equal(mg.rand(7, device="cuda").numpy(), third)
    assert not np.array_equal(first, second)
    mg.manual_seed(3)
    assert np.array_equal(mg.randn(4, 5, device="cuda").numpy(), first)
    assert json.loads(json.dumps(state)) == state  # a checkpoint holds it as JSON


# ---------------------------------------------------------------- ops: the same numbers on both devices

def _nchw(*shape):
    return lambda rng: rng.standard_normal(shape)


OPS = {  # name: (function of the float inputs, input makers)
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [_nchw(2, 3, 7, 6), _nchw(4, 3, 3, 3), _nchw(4)]),
    "conv2d_groups": (lambda x, w: F.conv2d(x, w, padding=1, dilation=2, groups=2), [_nchw(1, 4, 6, 6), _nchw(6, 2, 3, 3)]),
    "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
                         [_nchw(2, 3, 4, 5), _nchw(3, 2, 4, 4), _nchw(2)]),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), [_nchw(2, 3, 4, 4)]),
    "instance_norm": (lambda x, w, b: F.instance_norm(x, weight=w, bias=b), [_nchw(2, 3, 5, 4), _nchw(3), _nchw(3)]),
    "adain": (lambda x, s, b: F.adain(x, s, b), [_nchw(2, 3, 4, 5), _nchw(2, 3), _nchw(2, 3)]),
    "batch_norm": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [_nchw(4, 3, 3, 3), _nchw(3), _nchw(3)]),
    "group_norm": (lambda x, w, b: F.group_norm(x, 2, w, b), [_nchw(2, 4, 3, 3), _nchw(4), _nchw(4)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (5,), w, b), [_nchw(3, 5), _nchw(5), _nchw(5)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 3, stride=2, padding=1), [_nchw(2, 2, 7, 7)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 2), [_nchw(2, 2, 6, 5)]),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, 3), [_nchw(1, 2, 7, 5)]),
    "interpolate_bilinear": (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False),
                             [_nchw(1, 2, 3, 4)]),
    "upsample_nearest": (lambda x: F.upsample(x, scale_factor=2), [_nchw(1, 2, 3, 3)]),
    "pixel_shuffle": (lambda x: F.pixel_shuffle(x, 2), [_nchw(1, 8, 2, 3)]),
    "pad_reflect": (lambda x: F.pad(x, (1, 2, 2, 1), mode="reflect"), [_nchw(1, 2, 4, 4)]),
    "minibatch_stddev": (lambda x: F.minibatch_stddev(x, group_size=2), [_nchw(4, 3, 2, 2)]),
    "pixel_norm": (lambda x: F.pixel_norm(x), [_nchw(2, 4, 3, 3)]),
    "log_softmax": (lambda x: F.log_softmax(x, dim=1), [_nchw(4, 6)]),
    "logsumexp": (lambda x: F.logsumexp(x, dim=0), [_nchw(4, 6)]),
    "bce_with_logits": (lambda x, t: F.binary_cross_entropy_with_logits(x, t.sigmoid()), [_nchw(5, 3), _nchw(5, 3)]),
    "linear_tanh": (lambda x, w, b: F.linear(x, w, b).tanh(), [_nchw(4, 5), _nchw(3, 5), _nchw(3)]),
    "gaussian_kl": (lambda mu, logvar: F.gaussian_kl(mu, logvar), [_nchw(4, 3), _nchw(4, 3)]),
    "indexing": (lambda x: x[np.array([0, 2, 2])][:, 1:] * x[1:4].amax(dim=1, keepdim=True), [_nchw(4, 3)]),
    "cat_where": (lambda x, y: F.where(x > 0, F.cat([x, y], dim=1)[:, :3], y * y), [_nchw(3, 3), _nchw(3, 3)]),
}
INTEGER_OPS = {  # name: function of (float input, integer input on the same device)
    "cross_entropy": (lambda x, t: F.cross_entropy(x, t), (5, 4), lambda rng: rng.integers(0, 4, 5)),
    "embedding": (lambda w, i: F.embedding(i, w), (6, 3), lambda rng: rng.integers(0, 6, (2, 4))),
}


def _derivatives(function, arrays, device, extra=()):
    """``function`` on ``arrays`` moved to ``device``: its value, its gradients, and the
    gradients of (gradients · v), as NumPy arrays (zeros where an input drops out)."""
    rng = np.random.default_rng(1)
    xs = [mg.tensor(a, device=device, requires_grad=True) for a in arrays]
    y = function(*xs, *[mg.tensor(e, device=device) for e in extra])
    w = mg.tensor(rng.standard_normal(y.shape), device=device)
    grads = mg.grad((y * w).sum(), xs, create_graph=True, allow_unused=True)
    grads = [g if g is not None else mg.zeros_like(x) for g, x in zip(grads, xs)]
    vs = [mg.tensor(rng.standard_normal(x.shape), device=device) for x in xs]
    dot = sum((g * v).sum() for g, v in zip(grads, vs) if g.requires_grad)
    second = mg.grad(dot, xs, allow_unused=True) if isinstance(dot, mg.Tensor) else [None] * len(xs)
    return [y.numpy()] + [g.numpy() for g in grads] + [np.zeros(a.shape) if s is None else s.numpy()
                                                       for a, s in zip(arrays, second)]


def _assert_same_on_both_devices(function, arrays, fake_cuda, extra=()):
    cpu = _derivatives(function, arrays, "cpu", extra)
    backend.devices.cp = fake_cuda  # (the fixture already did; _derivatives on "cuda" needs it)
    cuda = _derivatives(function, arrays, "cuda", extra)
    for i, (a, b) in enumerate(zip(cpu, cuda)):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12, err_msg=f"output {i}")


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_values_gradients_and_second_derivatives_match_the_cpu(fake_cuda, name):
    function, makers = OPS[name]
    rng = np.random.default_rng(0)
    _assert_same_on_both_devices(function, [make(rng) for make in makers], fake_cuda)


@pytest.mark.parametrize("name", sorted(INTEGER_OPS))
def test_ops_with_integer_inputs_match_the_cpu(fake_cuda, name):
    function, shape, make_index = INTEGER_OPS[name]
    rng = np.random.default_rng(0)
    _assert_same_on_both_devices(function, [rng.standard_normal(shape)], fake_cuda, [make_index(rng)])


# ---------------------------------------------------------------- training steps

def _twins(make, device):
    """The same freshly initialized modules, on "cpu" and on ``device``."""
    mg.manual_seed(0)
    cpu = make()
    mg.manual_seed(0)
    return cpu, make().to(device)


def _assert_modules_equal(a, b, rtol=1e-5, atol=1e-6):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_allclose(sb[k].numpy(), sa[k].numpy(), rtol=rtol, atol=atol, err_msg=k)


def test_dcgan_step_on_cuda_equals_the_cpu_step(fake_cuda, monkeypatch):
    make_g = lambda: dcgan.init_weights(dcgan.Generator(latent_dim=8, image_size=16, width=8))
    make_d = lambda: dcgan.init_weights(dcgan.Discriminator(image_size=16, width=8))
    (g_cpu, g_gpu), (d_cpu, d_gpu) = _twins(make_g, "cuda"), _twins(make_d, "cuda")
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6, 8)).astype(np.float32)
    real = rng.uniform(-1, 1, (6, 1, 16, 16)).astype(np.float32)
    monkeypatch.setattr(dcgan, "sample_latent", lambda n, d, device="cpu": mg.tensor(z, device=device))
    losses = []
    for g, d, device in [(g_cpu, d_cpu, "cpu"), (g_gpu, d_gpu, "cuda")]:
        opt_g = mg.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = mg.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        for _ in range(2):
            losses.append(dcgan.train_step(g, d, opt_g, opt_d, mg.tensor(real, device=device)))
    cpu_losses, cuda_losses = losses[:2], losses[2:]
    for cpu_step, cuda_step in zip(cpu_losses, cuda_losses):  # one dict of losses a step
        assert cuda_step.keys() == cpu_step.keys()
        for name in cpu_step:
            assert cuda_step[name] == pytest.approx(cpu_step[name], rel=1e-5), name
    _assert_modules_equal(g_cpu, g_gpu)
    _assert_modules_equal(d_cpu, d_gpu)
    assert all(p.device == "cuda" for p in g_gpu.parameters())


def test_wgan_gp_critic_step_on_cuda_equals_the_cpu_step(fake_cuda):
    """The gradient penalty differentiates a gradient: double backward on CuPy arrays."""
    c_cpu, c_gpu = _twins(lambda: wgan.Critic(hidden=16, depth=2), "cuda")
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((8, 2)).astype(np.float32), rng.standard_normal((8, 2)).astype(np.float32)
    eps = rng.uniform(size=8).astype(np.float32)
    for critic, device in [(c_cpu, "cpu"), (c_gpu, "cuda")]:
        opt = mg.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))
        r, f = mg.tensor(real, device=device), mg.tensor(fake, device=device)
        loss = wgan.critic_loss(critic(r), critic(f)) + wgan.gradient_penalty(critic, r, f, eps=mg.tensor(eps, device=device))
        opt.zero_grad()
        loss.backward()
        opt.step()
    _assert_modules_equal(c_cpu, c_gpu)


# ---------------------------------------------------------------- the examples with --device cuda

EXAMPLES = {  # name: extra arguments (small models, so the runs take a second or two)
    "pca": (), "autoencoder": (), "vae": (), "gan": (), "cgan": (), "dcgan": (), "infogan": (),
    "vaegan": (), "wgan": (), "chairs": ("--width", 8, "--conv-width", 8, "--image-size", 16),
    **({"pix2pix": ("--ngf", 4, "--ndf", 4, "--train-examples", 64, "--test-examples", 1000),
        "cyclegan": ("--width", 2, "--blocks", 1, "--d-width", 2, "--pool-size", 3)}
       if os.path.isdir(FASHION_MNIST_DIR) else {}),
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs_on_cuda_and_writes_the_contract_files(fake_cuda, tmp_path, name):
    metrics = run(name, tmp_path, "--device", "cuda", "--steps", 3, "--batch-size", 8, *EXAMPLES[name])
    for f in CONTRACT:
        assert (tmp_path / f).stat().st_size > 0, f
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["device"] == "cuda" and saved["steps"] == 3
    numbers = [v for v in saved.values() if isinstance(v, float)]
    assert numbers and np.isfinite(numbers).all()


@pytest.mark.parametrize("name, modules", [("dcgan", ["generator", "discriminator"]), ("wgan", ["generator", "critic"])])
def test_resumed_run_on_cuda_continues_the_run(fake_cuda, tmp_path, name, modules):
    """Stopping and resuming must draw the GPU's noise where the uninterrupted run drew it."""
    extra = ("--no-lr-decay",) if name == "wgan" else ()  # the toy recipe's decay runs to 0 over --steps
    assert_resume_continues_the_run(name, tmp_path, 4, 2, ("--batch-size", 8, "--device", "cuda", *extra), modules)
