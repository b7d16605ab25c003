"""In-place changes and backward, against torch: the same sequence runs in both, and backward
raises "modified by an inplace operation" exactly where torch's does (same shape, same
versions), never where torch's does not. In-place ops cast to the tensor's dtype as torch's do.

Each case is one function of the module (``torch`` or ``minigan``), so the same source runs in
both frameworks.
"""
import re

import numpy as np
import pytest
import torch

import minigan as mg

VERSION_ERROR = re.compile(r"modified by an inplace operation: \[\S+ \[([\d, ]*)\]\].* is at version (\d+); "
                           r"expected version (\d+) instead")


def _outcome(case, T):
    """None if ``case`` ran through, else its RuntimeError's message."""
    try:
        case(T)
    except RuntimeError as e:
        return str(e)
    return None


def _facts(message):
    """What must agree between torch's error and ours: the tensor's shape and the two versions."""
    found = VERSION_ERROR.search(message)
    return found.groups() if found else message.split(":")[-1].strip()


def _leaf_and_saved(T):
    return T.ones(3), T.ones(3, requires_grad=True)


def product_then_change_the_other_operand(T):
    x, w = _leaf_and_saved(T)
    y = (x * w).sum()  # d/dw reads x
    x.add_(1)
    y.backward()


def sum_then_change_an_operand(T):
    x, w = _leaf_and_saved(T)
    y = (x + w).sum()  # add's backward reads no operand
    x.add_(1)
    y.backward()


def product_with_a_number_then_change_the_weight(T):
    _, w = _leaf_and_saved(T)
    y = (w * 2).sum()  # d/dw reads the number only
    with T.no_grad():
        w.mul_(3)
    y.backward()


def square_then_change_the_weight(T):
    _, w = _leaf_and_saved(T)
    y = (w * w).sum()
    with T.no_grad():
        w.mul_(3)
    y.backward()


def sigmoid_output_changed_through_detach(T):
    _, w = _leaf_and_saved(T)
    y = w.sigmoid()  # backward reads y; detach() shares y's version count
    y.detach().mul_(2)
    y.sum().backward()


def sigmoid_output_changed_through_data(T):
    _, w = _leaf_and_saved(T)
    y = w.sigmoid()
    y.data.mul_(2)  # .data has its own version count: autograd does not see this
    y.sum().backward()


def exp_output_zeroed_through_detach(T):
    _, w = _leaf_and_saved(T)
    y = w.exp()
    y.detach().zero_()
    y.sum().backward()


def index_assignment_into_a_saved_operand(T):
    x, w = _leaf_and_saved(T)
    y = (x * w).sum()
    x[0] = 5.0
    y.backward()


def fill_and_copy_into_a_saved_operand(T):
    x, w = _leaf_and_saved(T)
    y = (x * w).sum()
    x.fill_(2.0)
    x.copy_(T.ones(3))
    y.backward()


def change_through_a_view_of_a_saved_operand(T):
    x, w = T.ones(2, 3), T.ones(2, 3, requires_grad=True)
    y = (x * w).sum()
    x[0].mul_(2)  # x[0] is a view: its change is x's
    y.backward()


def change_through_a_reshaped_view(T):
    x, w = T.ones(2, 3), T.ones(2, 3, requires_grad=True)
    y = (x * w).sum()
    x.reshape(-1).clamp_(0.0, 0.5)
    y.backward()


def augmented_assignment_into_a_saved_operand(T):
    x, w = _leaf_and_saved(T)
    y = (x * w).sum()
    x += 1  # in place, as in torch: x is outside the graph
    y.backward()


def augmented_assignment_on_a_leaf_that_requires_grad(T):
    _, w = _leaf_and_saved(T)
    w *= 2


def in_place_into_an_expanded_view(T):
    T.ones(3).expand(2, 3).add_(1)


def in_place_on_a_leaf_that_requires_grad(T):
    _, w = _leaf_and_saved(T)
    w.add_(1)


def weight_clipping_through_data_between_forward_and_backward(T):
    T.manual_seed(0)
    critic = T.nn.Linear(3, 1)
    x = T.ones(4, 3, requires_grad=True)
    y = critic(x).sum()
    for p in critic.parameters():
        p.data.clamp_(-0.01, 0.01)
    y.backward()


def _step_between_forward_and_backward(T, make_optimizer):
    T.manual_seed(0)
    layer = T.nn.Linear(3, 2)
    x = T.ones(4, 3, requires_grad=True)
    loss = layer(x).pow(2).sum()
    for p in layer.parameters():
        p.grad = T.ones_like(p)
    make_optimizer(T, layer).step()
    loss.backward()


def sgd_step_between_forward_and_backward(T):
    _step_between_forward_and_backward(T, lambda T, m: T.optim.SGD(m.parameters(), lr=0.1))


def adam_step_between_forward_and_backward(T):
    _step_between_forward_and_backward(T, lambda T, m: T.optim.Adam(m.parameters(), lr=0.1))


def step_between_forward_and_backward_of_a_weight_only_graph(T):
    T.manual_seed(0)
    layer = T.nn.Linear(3, 2)
    loss = layer(T.ones(4, 3)).sum()  # nothing needs d/dx, so the weight is not saved
    for p in layer.parameters():
        p.grad = T.ones_like(p)
    T.optim.SGD(layer.parameters(), lr=0.1).step()
    loss.backward()


def batch_norm_used_twice_in_one_graph(T):
    norm = T.nn.BatchNorm1d(3)  # the second forward updates the running statistics in place
    x = T.ones(4, 3, requires_grad=True)
    (norm(x * T.arange(4.0).reshape(4, 1)).sum() + norm(x * x).sum()).backward()


CASES = [product_then_change_the_other_operand, sum_then_change_an_operand,
         product_with_a_number_then_change_the_weight, square_then_change_the_weight,
         sigmoid_output_changed_through_detach, sigmoid_output_changed_through_data,
         exp_output_zeroed_through_detach, index_assignment_into_a_saved_operand,
         fill_and_copy_into_a_saved_operand, change_through_a_view_of_a_saved_operand,
         change_through_a_reshaped_view, in_place_on_a_leaf_that_requires_grad,
         augmented_assignment_into_a_saved_operand, augmented_assignment_on_a_leaf_that_requires_grad,
         in_place_into_an_expanded_view,
         weight_clipping_through_data_between_forward_and_backward,
         sgd_step_between_forward_and_backward, adam_step_between_forward_and_backward,
         step_between_forward_and_backward_of_a_weight_only_graph, batch_norm_used_twice_in_one_graph]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_backward_raises_where_torch_raises(case):
    expected, got = _outcome(case, torch), _outcome(case, mg)
    assert (got is None) == (expected is None), f"torch: {expected}\nminigan: {got}"
    if expected is not None:
        assert _facts(got) == _facts(expected), f"torch: {expected}\nminigan: {got}"


def test_the_table_holds_both_outcomes():
    raised = [_outcome(case, torch) is not None for case in CASES]
    assert any(raised) and not all(raised)


# ---------------------------------------------------------------- the classic GAN bug


def gan_step(T, step_d_before_g_backward):
    """One GAN step; the bug steps D's optimizer before G's loss is backpropagated through D."""
    nn = T.nn
    T.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6))
    D = nn.Sequential(nn.Linear(6, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1), nn.Sigmoid())
    opt_d = T.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = T.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    criterion = nn.BCELoss()
    fake = G(T.randn(5, 4))
    d_on_fake = D(fake)
    loss_d = criterion(D(fake.detach()), T.zeros(5, 1))
    opt_d.zero_grad()
    loss_d.backward()
    if step_d_before_g_backward:
        opt_d.step()
    loss_g = criterion(d_on_fake, T.ones(5, 1))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    if not step_d_before_g_backward:
        opt_d.step()


def test_the_gan_bug_raises_torchs_error():
    expected = _outcome(lambda T: gan_step(T, True), torch)
    got = _outcome(lambda T: gan_step(T, True), mg)
    assert expected is not None and got is not None
    assert _facts(got) == _facts(expected) == ("8, 1", "2", "1")  # D's last weight, one step on


def test_the_gan_step_in_the_right_order_runs():
    assert _outcome(lambda T: gan_step(T, False), torch) is None
    assert _outcome(lambda T: gan_step(T, False), mg) is None


# ---------------------------------------------------------------- dtypes of in-place results


def _pair(values, dtype):
    return mg.tensor(np.array(values, dtype=dtype)), torch.tensor(np.array(values, dtype=dtype))


@pytest.mark.parametrize("op, own, other", [
    ("add_", np.float32, np.float64), ("mul_", np.float32, np.float64), ("sub_", np.float64, np.float32),
    ("div_", np.float32, np.int64), ("add_", np.int64, np.int32), ("mul_", np.int32, np.int64),
    ("add_", np.float32, np.bool_),
])
def test_in_place_result_keeps_the_tensors_dtype_as_torch(op, own, other):
    x, tx = _pair([1.5, -2.0, 3.0] if np.dtype(own).kind == "f" else [1, -2, 3], own)
    y, ty = _pair([2, 1, 1] if np.dtype(other).kind in "ib" else [0.25, 1.0 / 3, 7.0], other)
    version = x._version
    assert getattr(x, op)(y) is x
    getattr(tx, op)(ty)
    assert x.dtype == tx.numpy().dtype and x._version == version + 1
    np.testing.assert_array_equal(x.numpy(), tx.numpy())


@pytest.mark.parametrize("op, own, operand", [
    ("add_", np.int64, 0.5), ("mul_", np.int64, np.float32), ("div_", np.int64, 2), ("add_", np.bool_, 1),
    ("sub_", np.int32, np.float64),
])
def test_in_place_refuses_a_result_its_dtype_cannot_hold_as_torch(op, own, operand):
    x, tx = _pair([1, 2, 3], own)
    before = x.numpy().copy()
    if not isinstance(operand, (int, float)):
        operand = (mg.tensor(np.ones(3, operand)), torch.tensor(np.ones(3, operand)))
    ours, theirs = operand if isinstance(operand, tuple) else (operand, operand)
    with pytest.raises(RuntimeError) as expected:
        getattr(tx, op)(theirs)
    with pytest.raises(RuntimeError) as got:
        getattr(x, op)(ours)
    cast = re.compile(r"result type \w+ can't be cast to the desired output type \w+")
    assert cast.search(str(got.value)).group() == cast.search(str(expected.value)).group()
    np.testing.assert_array_equal(x.numpy(), before)  # nothing was written


def _step_on_a_layer_then_backward(T, device):
    T.manual_seed(0)
    layer = T.nn.Linear(3, 2).to(device)
    x = T.ones(4, 3, device=device, requires_grad=True)
    loss = layer(x).sum()  # d/dx reads the weight, through its transpose
    for p in layer.parameters():
        p.grad = T.ones_like(p)
    T.optim.SGD(layer.parameters(), lr=0.1).step()
    loss.backward()


def test_cupy_views_share_their_base_version_count_too(fake_cuda):
    """CuPy keeps a view's owner in ``.base`` as NumPy does: the step is seen on "cuda" as well."""
    expected = _outcome(lambda T: _step_on_a_layer_then_backward(T, "cpu"), torch)
    got = _outcome(lambda T: _step_on_a_layer_then_backward(T, "cuda"), mg)
    assert expected is not None and got is not None
    assert _facts(got) == _facts(expected)
