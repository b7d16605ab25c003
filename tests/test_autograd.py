"""The engine's contract: accumulation, grad(), graph freeing, depth, errors.

Values are checked against torch.autograd on the same computation.
"""
import gc
import weakref

import numpy as np
import pytest
import torch

import minigan as mg


def _pair(shape, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape)
    return mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)


def test_backward_accumulates_into_grad_like_torch():
    x, tx = _pair((3, 4))
    for _ in range(2):
        (x.tanh() * x).sum().backward()
        (tx.tanh() * tx).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_shared_input_gets_summed_gradient():
    x, tx = _pair((5,))
    y = x * x + x.exp() * x
    ty = tx * tx + tx.exp() * tx
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_grad_returns_without_touching_dot_grad():
    x, tx = _pair((2, 3))
    (g,) = mg.grad((x ** 3).sum(), x)
    (tg,) = torch.autograd.grad((tx ** 3).sum(), tx)
    np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-12)
    assert x.grad is None


def test_grad_with_grad_outputs_matches_vector_jacobian_product():
    x, tx = _pair((4, 2))
    v = np.random.default_rng(1).standard_normal((4, 2))
    (g,) = mg.grad(x.sigmoid(), x, grad_outputs=mg.tensor(v))
    (tg,) = torch.autograd.grad(tx.sigmoid(), tx, grad_outputs=torch.tensor(v))
    np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-12)


def test_create_graph_gives_second_derivative():
    # d/dx of ||d tanh(x)^2 / dx||^2, the shape of a gradient penalty
    x, tx = _pair((6,))
    (g,) = mg.grad((x.tanh() ** 2).sum(), x, create_graph=True)
    (g * g).sum().backward()
    (tg,) = torch.autograd.grad((tx.tanh() ** 2).sum(), tx, create_graph=True)
    (tg * tg).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10)


def test_third_derivative_of_exp_is_exp():
    x = mg.tensor([0.3, -1.2], dtype=np.float64, requires_grad=True)
    (g1,) = mg.grad(x.exp().sum(), x, create_graph=True)
    (g2,) = mg.grad(g1.sum(), x, create_graph=True)
    (g3,) = mg.grad(g2.sum(), x)
    np.testing.assert_allclose(g3.numpy(), np.exp(x.numpy()), rtol=1e-14)


def test_grad_of_intermediate_tensor():
    x, tx = _pair((3,))
    h = x * 2.0
    th = tx * 2.0
    (g,) = mg.grad((h.sin() * h).sum(), h)
    (tg,) = torch.autograd.grad((th.sin() * th).sum(), th)
    np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-12)


def test_grad_unused_input_raises_unless_allowed():
    x, _ = _pair((2,))
    z = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="allow_unused"):
        mg.grad(x.sum(), [x, z])
    gx, gz = mg.grad(x.sum(), [x, z], allow_unused=True)
    assert gz is None and np.all(gx.numpy() == 1)


def test_broadcast_gradient_sums_to_operand_shape():
    a, ta = _pair((4, 1, 3))
    b, tb = _pair((5, 1), seed=1)
    (a * b + b).sum().backward()
    (ta * tb + tb).sum().backward()
    assert a.grad.shape == (4, 1, 3) and b.grad.shape == (5, 1)
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-12)


def test_graph_is_freed_after_backward():
    x = mg.randn(3, requires_grad=True)
    hidden = x.exp()
    ref_hidden = weakref.ref(hidden)
    loss = (hidden * 2.0).sum()
    ref_fn = weakref.ref(hidden.creator)
    del hidden
    loss.backward()
    # nothing but the graph held `hidden`; backward released it
    assert ref_hidden() is None
    del loss
    assert ref_fn() is None


def test_outputs_are_held_weakly_no_reference_cycles():
    gc.collect()
    gc.disable()
    try:
        x = mg.randn(4, requires_grad=True)
        y = (x.tanh() * 3.0).sum()
        refs = [weakref.ref(y), weakref.ref(y.creator)]
        del y
        assert all(r() is None for r in refs)  # freed by reference counting alone
    finally:
        gc.enable()


def test_second_backward_without_retain_graph_raises():
    x = mg.randn(3, requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_second_backward_and_accumulates():
    x, tx = _pair((3,))
    y = (x.exp() * x).sum()
    ty = (tx.exp() * tx).sum()
    y.backward(retain_graph=True)
    y.backward()
    ty.backward(retain_graph=True)
    ty.backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_ten_thousand_deep_chain_backpropagates():
    x = mg.tensor(1.0, dtype=np.float64, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    (g,) = mg.grad(y, x, retain_graph=True)
    y.backward()
    np.testing.assert_allclose(g.item(), 1.0001 ** 10_000, rtol=1e-10)
    np.testing.assert_allclose(x.grad.item(), 1.0001 ** 10_000, rtol=1e-10)
    del y  # tearing down a deep graph must not hit the recursion limit either


def test_no_grad_records_nothing():
    x = mg.randn(3, requires_grad=True)
    with mg.no_grad():
        y = x * 2.0
    assert y.creator is None and not y.requires_grad

    @mg.no_grad()
    def f(t):
        return t.exp()
    assert f(x).creator is None


def test_detach_cuts_the_graph():
    x, tx = _pair((3,))
    ((x.detach() * x).sum()).backward()
    ((tx.detach() * tx).sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_backward_on_non_scalar_needs_gradient():
    x = mg.randn(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"scalar outputs.*\(2, 3\)"):
        (x * 2.0).backward()


def test_backward_with_explicit_gradient_matches_torch():
    x, tx = _pair((2, 3))
    v = np.random.default_rng(3).standard_normal((2, 3))
    x.tanh().backward(mg.tensor(v))
    tx.tanh().backward(torch.tensor(v))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_backward_on_tensor_without_graph_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.ones(3).sum().backward()


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(RuntimeError, match="floating-point"):
        mg.tensor([1, 2, 3], requires_grad=True)


@pytest.mark.parametrize("make, match", [
    (lambda: mg.tensor([1, None, 3]), "Could not infer dtype of NoneType"),
    (lambda: mg.tensor(["a"]), "Could not infer dtype of str"),
    (lambda: mg.tensor([b"a"]), "Could not infer dtype of bytes"),
    (lambda: mg.tensor([[1.0], [{}]]), "Could not infer dtype of dict"),
    (lambda: mg.tensor(["1.5"], dtype="float32"), "Could not infer dtype of str"),
    (lambda: mg.Tensor([1, "x"]), "Could not infer dtype of str"),
    (lambda: mg.tensor(np.array(["a"])), "numpy.str_"),
    (lambda: mg.as_tensor(np.array([1, 2], dtype=object)), "numpy.object_"),
    (lambda: mg.Tensor(np.array(["a", "b"])), "numpy.str_"),
    (lambda: mg.Tensor(np.array([b"a"])), "numpy.bytes_"),
    (lambda: mg.Tensor(np.array([1, None], dtype=object)), "numpy.object_"),
    (lambda: mg.Tensor(np.str_("a")), "numpy.str_"),
])
def test_non_numbers_are_refused_at_construction(make, match):
    """As torch does (TypeError), rather than an object or string tensor that fails later."""
    with pytest.raises(TypeError, match=match):
        make()


def test_numbers_of_every_kind_still_make_tensors():
    assert mg.tensor([True, False]).dtype == np.bool_
    assert mg.tensor([1, 2]).dtype == np.int64
    assert mg.tensor([1, 2.5]).dtype == np.float32
    assert mg.tensor(np.array([1, 2], dtype=np.uint8)).dtype == np.uint8
    assert mg.tensor(np.array([1 + 2j])).dtype == np.complex128
    assert mg.Tensor(np.float64(2.0)).dtype == np.float64


def test_mixed_devices_raise_naming_both(monkeypatch):
    # a stand-in for a GPU array: the backend tells devices apart by the CuPy array type
    import types

    class FakeCuda(np.ndarray):
        pass
    from minigan import backend
    monkeypatch.setattr(backend.devices, "cp", types.SimpleNamespace(ndarray=FakeCuda))
    a = mg.ones(3)
    b = mg.Tensor(np.ones(3).view(FakeCuda))
    with pytest.raises(RuntimeError, match="different devices.*cpu and cuda"):
        a + b


def test_manual_seed_makes_randn_reproducible():
    mg.manual_seed(7)
    a = mg.randn(5).numpy()
    mg.manual_seed(7)
    b = mg.randn(5).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32


def test_default_dtypes_follow_torch():
    assert mg.tensor([1.5]).dtype == np.float32
    assert mg.tensor([1]).dtype == np.int64
    assert (mg.ones(2, dtype=np.float64) * 0.5).dtype == np.float64
    assert (mg.ones(2) * 0.5).dtype == np.float32
    assert mg.arange(3).dtype == np.int64


def test_grad_wrt_input_skips_weight_gradients():
    # a gradient penalty asks for d critic / d x only; the weight's gradient is never needed
    seen = []

    class Scale(mg.Function):
        def forward(self, x, w):
            return x * w

        def backward(self, gy):
            seen.append(self.needs_input_grad)
            x, w = self.inputs
            return (gy * w if self.needs_input_grad[0] else None,
                    (gy * x).sum() if self.needs_input_grad[1] else None)

    x = mg.randn(3, requires_grad=True)
    w = mg.tensor(2.0, requires_grad=True)
    (g,) = mg.grad(Scale()(x, w).sum(), x)
    assert seen == [(True, False)]
    np.testing.assert_allclose(g.numpy(), 2.0)
    assert w.grad is None


def test_leaf_grad_is_a_private_writable_array():
    # the seed of sum() is broadcast from one value, and `x + 0`'s gradient is the
    # seed itself: .grad must still be its own array, as in torch
    x = mg.randn(3, 4, requires_grad=True)
    w = mg.randn(3, 4, requires_grad=True)
    (x + w).sum().backward()
    x.grad.zero_()
    np.testing.assert_array_equal(w.grad.numpy(), np.ones((3, 4)))
    assert not np.shares_memory(x.grad.array, w.grad.array)
    y = mg.randn(5, requires_grad=True)
    y.backward(mg.ones(5))
    y.grad.array[...] = 7.0  # writable
    assert not y.grad.requires_grad


def test_gradient_seed_takes_the_outputs_dtype():
    x = mg.randn(4, requires_grad=True)  # float32
    y = x * 2
    y.backward(np.ones(4, dtype=np.float64))
    tx = torch.tensor(x.numpy(), requires_grad=True)
    (tx * 2).backward(torch.ones(4, dtype=torch.float64))
    assert x.grad.dtype == np.float32 and tx.grad.dtype == torch.float32


def test_copy_of_incompatible_shape_names_both_shapes():
    x = mg.zeros(3, 4)
    with pytest.raises(RuntimeError, match=r"copy_.*\(2, 5\).*\(3, 4\)"):
        x.copy_(np.ones((2, 5)))
    x.copy_(np.arange(4.0))  # broadcasting in is allowed, as in torch
    np.testing.assert_array_equal(x.numpy()[2], np.arange(4.0))


def test_a_leafs_gradients_are_summed_before_they_join_its_grad_as_in_torch():
    # torch adds up a leaf's gradients of one backward, then adds that to .grad: with these float32
    # values (1 + 4e-8) + 4e-8 rounds to 1, but 1 + (4e-8 + 4e-8) does not
    results = []
    for lib, make in ((mg, lambda v: mg.tensor(np.array(v, np.float32), requires_grad=True)),
                      (torch, lambda v: torch.tensor(v, dtype=torch.float32, requires_grad=True))):
        w = make([1.0])
        w.grad = make([1.0]).detach()
        ((w * 4e-8).sum() + (w * 4e-8).sum()).backward()
        results.append(np.asarray(w.grad.detach().numpy()))
        w.grad = None
        ((w * 4e-8).sum() + (w * 4e-8).sum()).backward()  # a sum of the pass becomes .grad as it is
        results.append(np.asarray(w.grad.detach().numpy()))
    np.testing.assert_array_equal(results[0], results[2])
    np.testing.assert_array_equal(results[1], results[3])
    assert results[0][0] != 1.0


def test_backward_with_inputs_accumulates_only_into_those_like_torch():
    x, tx = _pair((3,))
    w, tw = _pair((3,), seed=1)
    h, th = x * w, tx * tw
    (h.exp() * h).sum().backward(inputs=[w, h])
    (th.exp() * th).sum().backward(inputs=[tw, th])
    assert x.grad is None and tx.grad is None
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(h.grad.numpy(), th.grad.numpy(), rtol=1e-12)


def test_grad_of_an_intermediate_and_a_leaf_before_it_in_one_call():
    x, tx = _pair((3,))
    h, th = x.exp(), tx.exp()
    gh, gx = mg.grad((h * h).sum(), [h, x])
    tgh, tgx = torch.autograd.grad((th * th).sum(), [th, tx])
    np.testing.assert_allclose(gh.numpy(), tgh.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gx.numpy(), tgx.numpy(), rtol=1e-12)


def test_grad_of_an_output_with_respect_to_itself_is_the_seed():
    x, _ = _pair((3,))
    y = x * 2.0
    (g,) = mg.grad(y, y, grad_outputs=mg.full((3,), 5.0, dtype=np.float64))
    np.testing.assert_array_equal(g.numpy(), 5.0)
    leaf = mg.tensor(3.0, requires_grad=True)
    leaf.backward()
    assert leaf.grad.item() == 1.0


def test_a_pruned_pass_leaves_the_next_pass_whole():
    # grad() w.r.t. the image computes no weight gradient; a later backward through the
    # same (retained) graph still gives the weight its gradient
    x, tx = _pair((4,))
    w, tw = _pair((4,), seed=1)
    loss, tloss = (x * w).tanh().sum(), (tx * tw).tanh().sum()
    (gx,) = mg.grad(loss, x, retain_graph=True)
    assert w.grad is None
    loss.backward()
    (tgx,) = torch.autograd.grad(tloss, tx, retain_graph=True)
    tloss.backward()
    np.testing.assert_allclose(gx.numpy(), tgx.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_graph_is_freed_after_grad_unless_retained():
    x = mg.randn(3, requires_grad=True)
    y = (x.exp() * x).sum()
    mg.grad(y, x)
    with pytest.raises(RuntimeError, match="second time"):
        mg.grad(y, x)
    z = (x.exp() * x).sum()
    mg.grad(z, x, retain_graph=True)
    mg.grad(z, x)


def test_a_backward_returning_the_wrong_number_or_shape_of_gradients_is_named():
    class TooMany(mg.Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return gy, gy

    class WrongShape(TooMany):
        def backward(self, gy):
            return gy.sum()

    x = mg.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="TooMany.backward returned 2 gradients for 1 inputs"):
        TooMany()(x).sum().backward()
    with pytest.raises(RuntimeError, match=r"WrongShape.backward: gradient shape \(\) .* \(3,\)"):
        WrongShape()(x).sum().backward()
