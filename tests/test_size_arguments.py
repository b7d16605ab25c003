"""Size arguments (kernel_size, stride, padding, dilation, output_padding, crop sizes) are read
by one helper, ``minigan.functional._args.pair``, the way torch reads them: an int or a 1- or
2-sequence of ints. Every op and layer that takes one accepts and refuses the same things."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minigan as mg
from minigan import nn
from minigan import functional as F
from minigan.data import transforms

X = np.ones((1, 2, 6, 6))

TAKES_A_SIZE = {  # name -> a call with the size argument under test
    "conv2d": lambda size: F.conv2d(mg.tensor(X), mg.tensor(np.ones((2, 2, 3, 3))), stride=size),
    "conv_transpose2d": lambda size: F.conv_transpose2d(mg.tensor(X), mg.tensor(np.ones((2, 2, 3, 3))),
                                                        dilation=size),
    "avg_pool2d": lambda size: F.avg_pool2d(mg.tensor(X), size),
    "max_pool2d": lambda size: F.max_pool2d(mg.tensor(X), 2, stride=size),
    "Conv2d": lambda size: nn.Conv2d(2, 2, size),
    "ConvTranspose2d": lambda size: nn.ConvTranspose2d(2, 2, 3, output_padding=size, stride=3),
    "EqualizedConv2d": lambda size: nn.EqualizedConv2d(2, 2, size),
    "center_crop": lambda size: transforms.center_crop(X, size),
}


W = np.arange(36, dtype=np.float64).reshape(2, 2, 3, 3) / 36
XT = np.arange(72, dtype=np.float64).reshape(1, 2, 6, 6) / 72


def _torch_size(size):
    """``size`` as torch takes it (torch has no NumPy integers; a list stays a list)."""
    return int(size) if isinstance(size, np.integer) else size


def _torch_module_size(size):
    """``size`` for a torch layer: torch's functional ops read a 1-sequence as that value twice,
    its layers keep it 1 long (and then fail in forward); minigan's layers read it as the ops do."""
    size = _torch_size(size)
    return tuple(size) * 2 if isinstance(size, (tuple, list)) and len(size) == 1 else size


AS_TORCH_READS_IT = {  # name -> (minigan's result, torch's or the closed form's), for one spelling of 2
    "conv2d": lambda size: (F.conv2d(mg.tensor(XT), mg.tensor(W), stride=size).numpy(),
                            TF.conv2d(torch.tensor(XT), torch.tensor(W), stride=_torch_size(size)).numpy()),
    "conv_transpose2d": lambda size: (
        F.conv_transpose2d(mg.tensor(XT), mg.tensor(W), dilation=size).numpy(),
        TF.conv_transpose2d(torch.tensor(XT), torch.tensor(W), dilation=_torch_size(size)).numpy()),
    "avg_pool2d": lambda size: (F.avg_pool2d(mg.tensor(XT), size).numpy(),
                                TF.avg_pool2d(torch.tensor(XT), _torch_size(size)).numpy()),
    "max_pool2d": lambda size: (F.max_pool2d(mg.tensor(XT), 2, stride=size).numpy(),
                                TF.max_pool2d(torch.tensor(XT), 2, stride=_torch_size(size)).numpy()),
    "Conv2d": lambda size: (nn.Conv2d(2, 2, size).weight.shape,
                            tuple(torch.nn.Conv2d(2, 2, _torch_module_size(size)).weight.shape)),
    "ConvTranspose2d": lambda size: (
        nn.ConvTranspose2d(2, 2, 3, output_padding=size, stride=3)(mg.tensor(XT.astype(np.float32))).shape,
        tuple(torch.nn.ConvTranspose2d(2, 2, 3, output_padding=_torch_module_size(size), stride=3)(
            torch.tensor(XT, dtype=torch.float32)).shape)),
    "EqualizedConv2d": lambda size: (nn.EqualizedConv2d(2, 2, size).weight.shape,
                                     tuple(torch.nn.Conv2d(2, 2, _torch_module_size(size)).weight.shape)),
    "center_crop": lambda size: (transforms.center_crop(XT, size), XT[..., 2:4, 2:4]),  # (6 - 2) // 2 = 2
}


@pytest.mark.parametrize("name", AS_TORCH_READS_IT)
@pytest.mark.parametrize("size", [2, np.int64(2), (2,), [2, 2], (2, 2)])
def test_an_int_or_a_one_or_two_sequence_of_ints_is_read_as_torch_reads_it(name, size):
    got, want = AS_TORCH_READS_IT[name](size)
    if isinstance(want, tuple):  # a layer: the shape torch's layer gives for the same argument
        assert tuple(got) == want
    else:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", TAKES_A_SIZE)
def test_three_sizes_are_refused_naming_the_op(name):
    with pytest.raises(RuntimeError, match=rf"{name}: expected \w+ to be a single integer value or a list of 2"):
        TAKES_A_SIZE[name]((2, 2, 2))


@pytest.mark.parametrize("name", TAKES_A_SIZE)
@pytest.mark.parametrize("size", [1.5, "2", (2.0, 2)])
def test_a_size_that_is_not_ints_is_a_type_error_naming_the_op(name, size):
    with pytest.raises(TypeError, match=rf"{name}\(\): argument '\w+' must be an int or a tuple of ints"):
        TAKES_A_SIZE[name](size)


def test_torch_refuses_a_float_stride_too():
    with pytest.raises(TypeError):
        TF.conv2d(torch.ones(1, 2, 6, 6), torch.ones(2, 2, 3, 3), stride=1.5)
