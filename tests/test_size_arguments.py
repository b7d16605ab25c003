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


@pytest.mark.parametrize("name", TAKES_A_SIZE)
@pytest.mark.parametrize("size", [2, np.int64(2), (2,), [2, 2], (2, 2)])
def test_an_int_or_a_one_or_two_sequence_of_ints_is_accepted(name, size):
    TAKES_A_SIZE[name](size)


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
