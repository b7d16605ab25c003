"""Neural-network building blocks, named as in ``torch.nn``.

    from minigan import nn
    net = nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))

``minigan.nn.functional`` is ``minigan.functional`` (as ``torch.nn.functional``
is to torch). A new family of layers goes in its own file here and gets one
import line below.
"""
import sys

from .. import functional
from . import init, utils
from .parameter import Parameter
from .module import Module, evaluating
from .containers import ModuleDict, ModuleList, Sequential, mlp
from .linear import Flatten, Identity, Linear, Unflatten
from .activation import (Hardtanh, LeakyReLU, LogSigmoid, LogSoftmax, ReLU, SiLU, Sigmoid, Softmax,
                         Softplus, Tanh)
from .dropout import Dropout, Dropout2d
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .conv import Conv2d, ConvTranspose2d
from .equalized import EqualizedConv2d, EqualizedLinear
from .normalization import (NORMS_2D, BatchNorm1d, BatchNorm2d, ConditionalBatchNorm2d, GroupNorm, InstanceNorm2d,
                            LayerNorm, norm_layer)
from .unet import UNet, UnetSkipConnectionBlock
from .pool import (AdaptiveAvgPool2d, AvgPool2d, ConstantPad2d, Embedding, MaxPool2d, PixelShuffle,
                   PixelUnshuffle, PReLU, ReflectionPad2d, ReplicationPad2d, Upsample, ZeroPad2d)

# `import minigan.nn.functional as F` works too, and gives the same module object
sys.modules[__name__ + ".functional"] = functional
