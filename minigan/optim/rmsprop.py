"""RMSprop: divide the step by a running root mean square of the gradient (WGAN's optimizer)."""
from .. import backend
from .adam import _lerp_
from .optimizer import Optimizer


class RMSprop(Optimizer):
    r"""RMSprop (Hinton's lecture 6e), computed exactly as ``torch.optim.RMSprop`` (single-tensor path).

    For each parameter p with gradient g::

        g <- -g                                   if maximize
        g <- g + weight_decay * p
        v <- alpha v + (1 - alpha) g^2            (square_avg)
        a <- alpha a + (1 - alpha) g              if centered (grad_avg)
        d <- sqrt(v - a^2) + eps  if centered, else  sqrt(v) + eps
        b <- momentum b + g / d;  p <- p - lr b   if momentum > 0 (momentum_buffer)
        p <- p - lr g / d                         otherwise

    The centered variant divides by an estimate of the gradient's standard
    deviation rather than its root mean square. WGAN (Arjovsky et al., 2017) uses
    RMSprop with lr=5e-5 because momentum-based methods were unstable with its
    clipped critic.

    State per parameter: ``step``, ``square_avg``, and ``momentum_buffer`` /
    ``grad_avg`` when momentum > 0 / centered.
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, *,
                 maximize=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, p, grad, state, group):
        xp = backend.get_array_module(p)
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        momentum, weight_decay = group["momentum"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["square_avg"] = self._zeros_like(p)
            if momentum > 0:
                state["momentum_buffer"] = self._zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = self._zeros_like(p)
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        if weight_decay != 0:
            grad = grad + weight_decay * p

        square_avg = state["square_avg"].array
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state["grad_avg"].array
            _lerp_(grad_avg, grad, 1 - alpha)
            avg = xp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = xp.sqrt(square_avg)
        avg += eps

        if momentum > 0:
            buf = state["momentum_buffer"].array
            buf *= momentum
            buf += grad / avg
            p += -lr * buf
        else:
            p += -lr * grad / avg
