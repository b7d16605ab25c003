"""minigan.gradcheck: passes on correct ops, fails loudly on wrong ones.

The wrong ones are Functions written here on purpose: one whose backward is
twice the derivative, and one whose backward has the right values but is built
from a constant, so its own derivative (the second derivative) is wrong.
"""
import numpy as np
import pytest

import minigan as mg
import minigan.functional as F
from minigan.gradcheck import GradcheckError, gradcheck, gradgradcheck


def _leaf(*shape, seed=0, low=-2.0, high=2.0):
    x = np.random.default_rng(seed).uniform(low, high, shape)
    return mg.tensor(x, dtype=mg.float64, requires_grad=True)


class SinTwiceTheGradient(mg.Function):
    """sin(x), with a backward that is 2 cos(x): wrong at first order."""

    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        return 2.0 * gy * self.inputs[0].cos()


class CubeWithConstantBackward(mg.Function):
    """x^3, with a backward 3 x^2 gy right in value but made of x's raw array:
    the graph of the backward does not see x, so d/dx of it is missing."""

    def forward(self, x):
        return x ** 3

    def backward(self, gy):
        return gy * mg.Tensor(3.0 * self.inputs[0].array ** 2)


CORRECT = [
    ("tanh_times_input", lambda x: x.tanh() * x, lambda: (_leaf(3, 4),)),
    ("broadcast_mul_add", lambda a, b: a * b + b, lambda: (_leaf(2, 3), _leaf(3, seed=1))),
    ("matmul", lambda a, b: a @ b, lambda: (_leaf(2, 3), _leaf(3, 4, seed=1))),
    ("softmax", lambda x: F.softmax(x, dim=-1), lambda: (_leaf(2, 4),)),
    ("split_two_outputs", lambda x: x.split([1, 2], dim=1), lambda: (_leaf(2, 3),)),
    ("output_ignores_an_input", lambda a, b: a.exp(), lambda: (_leaf(3), _leaf(2, seed=1))),
    ("gaussian_kl", lambda mu, logvar: F.gaussian_kl(mu, logvar), lambda: (_leaf(3, 2), _leaf(3, 2, seed=1))),
    ("cross_entropy_integer_target", lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
     lambda: (_leaf(4, 3), mg.tensor(np.array([0, 2, 1, 2])))),
    ("log_of_positive", lambda x: x.log(), lambda: (_leaf(5, low=0.5, high=3.0),)),
]


@pytest.mark.parametrize("fn, make_inputs", [pytest.param(f, m, id=n) for n, f, m in CORRECT])
def test_gradcheck_and_gradgradcheck_pass_on_correct_ops(fn, make_inputs):
    assert gradcheck(fn, make_inputs())
    assert gradgradcheck(fn, make_inputs())


def test_gradcheck_fails_on_a_backward_twice_too_large_naming_input_element_and_values():
    x = _leaf(2, 3)
    with pytest.raises(GradcheckError, match=r"input 0 .*element \(\d, \d\).*numerical .*analytical"):
        gradcheck(lambda x: SinTwiceTheGradient()(x), (x,))
    assert gradcheck(lambda x: SinTwiceTheGradient()(x), (x,), raise_exception=False) is False


def test_gradcheck_names_the_wrong_input_among_several():
    a, b = _leaf(3), _leaf(3, seed=1)
    with pytest.raises(GradcheckError, match=r"with respect to input 1"):
        gradcheck(lambda a, b: a * 2.0 + SinTwiceTheGradient()(b), (a, b))


def test_backward_right_in_value_but_not_differentiable_passes_gradcheck_fails_gradgradcheck():
    x = _leaf(4)
    assert gradcheck(lambda x: CubeWithConstantBackward()(x), (x,))
    with pytest.raises(GradcheckError, match=r"input 0"):
        gradgradcheck(lambda x: CubeWithConstantBackward()(x), (x,))
    assert gradgradcheck(lambda x: CubeWithConstantBackward()(x), (x,), raise_exception=False) is False


class TripleDetachingTheGradient(mg.Function):
    """3x, with a backward that reads gy's raw array: right values, but the
    gradient no longer depends on gy in the graph (d/d gy is lost)."""

    def forward(self, x):
        return 3.0 * x

    def backward(self, gy):
        return mg.Tensor(3.0 * gy.array)


def test_gradgradcheck_fails_on_a_backward_cut_from_its_incoming_gradient():
    x = _leaf(2)
    assert gradcheck(lambda x: TripleDetachingTheGradient()(x), (x,))
    with pytest.raises(GradcheckError, match=r"gradient of input 0 .*with respect to grad_outputs\[0\]"):
        gradgradcheck(lambda x: TripleDetachingTheGradient()(x), (x,))


def test_gradgradcheck_accepts_given_grad_outputs():
    x = _leaf(2, 3)
    v = np.random.default_rng(2).standard_normal((2, 3))
    assert gradgradcheck(lambda x: x.sigmoid() * x, (x,), grad_outputs=(mg.tensor(v, dtype=mg.float64),))


@pytest.mark.parametrize("check", [gradcheck, gradgradcheck])
def test_float32_inputs_are_refused(check):
    x = mg.tensor(np.ones(3), dtype=mg.float32, requires_grad=True)
    with pytest.raises(TypeError, match=r"input 0 .*float32.*float64"):
        check(lambda x: x * x, (x,))


def test_no_input_requiring_grad_is_refused():
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(lambda x: x * x, (mg.tensor(np.ones(3), dtype=mg.float64),))
