"""Optimizers, learning-rate schedules and weight averaging, as ``torch.optim``.

    opt = optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loss.backward(); opt.step(); opt.zero_grad()

Each optimizer's update is computed as torch's single-tensor implementation
(``foreach=False``), so minigan and torch agree step by step.
"""
from . import lr_scheduler
from .adam import Adam, AdamW
from .ema import EMA
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD
