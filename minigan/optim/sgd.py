"""Stochastic gradient descent, with momentum, Nesterov momentum and weight decay."""
from .optimizer import Optimizer


class SGD(Optimizer):
    r"""SGD, computed exactly as ``torch.optim.SGD`` (single-tensor path).

    For each parameter p with gradient g, at step t::

        g <- -g                              if maximize
        g <- g + weight_decay * p            (L2 penalty folded into the gradient)
        b <- g                               at the first step (t = 1)
        b <- momentum * b + (1 - dampening) * g   afterwards
        g <- g + momentum * b   if nesterov, else   g <- b     (when momentum != 0)
        p <- p - lr * g

    State per parameter: ``momentum_buffer`` (only when momentum != 0).
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, p, grad, state, group):
        lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * p
        if momentum != 0:
            if state.get("momentum_buffer") is None:
                state["momentum_buffer"] = self._zeros_like(p)
                buf = state["momentum_buffer"].array
                buf[...] = grad  # the first buffer is the gradient itself, undamped
            else:
                buf = state["momentum_buffer"].array
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        p += -lr * grad
