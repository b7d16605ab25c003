"""Adam and AdamW: per-coordinate step sizes from running moments of the gradient."""
from .. import backend, dispatch
from .optimizer import Optimizer


def _lerp_(start, end, weight):
    """start <- start + weight * (end - start), in place, with torch's two formulas
    (the second is more accurate when the weight is close to 1)."""
    weight = start.dtype.type(weight)
    step = end - start  # the one temporary
    if abs(weight) < 0.5:
        step *= weight
        start += step
    else:
        step *= start.dtype.type(1) - weight
        backend.get_array_module(start).subtract(end, step, out=start)


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), computed exactly as ``torch.optim.Adam`` (single-tensor path).

    For each parameter p with gradient g, at step t = 1, 2, ...::

        g <- -g                                  if maximize
        p <- p (1 - lr * weight_decay)           if decoupled_weight_decay (AdamW)
        g <- g + weight_decay * p                otherwise (L2 penalty)
        m <- beta1 m + (1 - beta1) g             first moment  (exp_avg)
        v <- beta2 v + (1 - beta2) g^2           second moment (exp_avg_sq)
        v_max <- max(v_max, v)                   if amsgrad    (max_exp_avg_sq)
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v or v_max) / sqrt(1 - beta2^t) + eps)

    The (1 - beta^t) factors undo the bias of moments that start at zero. GANs
    (DCGAN onwards) use betas=(0.5, 0.999): a short memory for m keeps up with a
    moving opponent.

    State per parameter: ``step`` (an int), ``exp_avg``, ``exp_avg_sq`` and, with
    amsgrad, ``max_exp_avg_sq``.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 maximize=False, decoupled_weight_decay=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _update_group(self, params, group):
        """Each parameter's update, except that where the kernels run (minigan/dispatch.py)
        the float32 ones take one Triton launch for all (``minigan.kernels.optim.adam_update_many``),
        a parameter that is not 16-byte aligned a launch of its own."""
        batches, fused = {}, None  # step -> the (p, grad, moments) the kernel updates together
        answers = {}  # the switch's answer depends only on the arrays' kind and dtypes: ask once for each
        for t in params:
            p, grad, state = t.array, t.grad.array, self.state[t]
            moments = self._moments(p, state, group)
            kind = (type(p), p.dtype, grad.dtype)
            if kind not in answers:
                answers[kind] = dispatch.kernel("adam", p, grad)
            kernels = answers[kind]
            if kernels is not None and kernels.fusable(p, grad, *moments):
                fused = kernels
                if fused.aligned(p, grad, *moments):
                    batches.setdefault(state["step"], []).append((p, grad) + moments)
                else:
                    fused.adam_update(p, grad, *moments, step=state["step"], **self._hyper(group))
                continue
            self._apply(p, grad, moments, state["step"], group)
        for step, tensors in batches.items():
            fused.adam_update_many(tensors, step=step, **self._hyper(group))

    @staticmethod
    def _hyper(group):
        """The group's settings as the fused update takes them."""
        return dict(lr=group["lr"], beta1=group["betas"][0], beta2=group["betas"][1], eps=group["eps"],
                    weight_decay=group["weight_decay"], decoupled=group["decoupled_weight_decay"],
                    maximize=group["maximize"])

    def _update(self, p, grad, state, group):
        self._apply(p, grad, self._moments(p, state, group), state["step"], group)

    def _moments(self, p, state, group):
        """This step's (exp_avg, exp_avg_sq, max_exp_avg_sq or None) arrays of ``p``, made at
        the first step; counts the step."""
        if not state:
            state["step"] = 0
            state["exp_avg"] = self._zeros_like(p)
            state["exp_avg_sq"] = self._zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = self._zeros_like(p)
        state["step"] += 1
        return (state["exp_avg"].array, state["exp_avg_sq"].array,
                state["max_exp_avg_sq"].array if group["amsgrad"] else None)

    def _apply(self, p, grad, moments, step, group):
        """One parameter's update in place, on arrays (the fused kernel does these lines in one pass)."""
        xp = backend.get_array_module(p)
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        exp_avg, exp_avg_sq, max_exp_avg_sq = moments
        if group["maximize"]:
            grad = -grad

        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                p *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * p

        # in place, with one temporary per line: the same arithmetic as torch, in the same order
        _lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq *= beta2
        square = (1 - beta2) * grad
        square *= grad
        exp_avg_sq += square

        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        step_size = lr / bias_correction1
        bias_correction2_sqrt = bias_correction2 ** 0.5

        if group["amsgrad"]:
            xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
            denom = xp.sqrt(max_exp_avg_sq)
        else:
            denom = xp.sqrt(exp_avg_sq)
        denom /= bias_correction2_sqrt
        denom += eps
        update = -step_size * exp_avg
        update /= denom
        p += update


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    The decay shrinks the weights directly, p <- p (1 - lr * weight_decay), instead of
    entering the gradient, so it is not rescaled by Adam's per-coordinate step sizes.
    The rest of the update is Adam's. Note the default weight_decay=1e-2.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # AdamW is always decoupled, whatever was saved
            group["decoupled_weight_decay"] = True
