"""Multi-tensor building blocks whose coefficients may be Python numbers or 0-d tensors.

``torch._foreach_*`` ops take a tensor coefficient in some places and only a Python
number in others (``alpha=``, ``value=``, ``lerp``'s weight); a tensor passed where a
number is expected is read back to the host, which a scheduled learning rate must never
be. These helpers pick the form that keeps a tensor on its device, and the cheapest form
for a number. Every list argument holds tensors of one device and dtype.
"""
from __future__ import annotations

from typing import List, Sequence, Union

import torch
from torch import Tensor

Number = Union[int, float]
Coefficient = Union[Number, Tensor]
Tensors = List[Tensor]


def is_tensor(x) -> bool:
    return isinstance(x, Tensor)


def matters(x: Coefficient) -> bool:
    """Whether a term with coefficient ``x`` must be computed (a tensor always is: no host read)."""
    return is_tensor(x) or x != 0


def on_device(x: Coefficient, like: Tensor) -> Coefficient:
    """``x`` on the device of ``like`` if it is a tensor elsewhere (no synchronisation)."""
    if is_tensor(x) and x.device != like.device:
        return x.to(like.device, non_blocking=True)
    return x


def per_tensor(vector: Tensor) -> Sequence[Tensor]:
    """One 0-d tensor per entry of ``vector``, for a foreach op with one coefficient per tensor."""
    return vector.unbind(0)


def add_scalar_(xs: Tensors, value: Coefficient) -> None:
    """``x += value`` for each tensor.

    (``torch._foreach_add_`` with a single tensor reads it back to the host; a list of
    the same 0-d tensor does not.)
    """
    torch._foreach_add_(xs, [value] * len(xs) if is_tensor(value) else value)


def added_scalar(xs: Tensors, value: Coefficient) -> Tensors:
    """New tensors ``x + value``."""
    return torch._foreach_add(xs, [value] * len(xs) if is_tensor(value) else value)


def add_scaled_(xs: Tensors, ys: Tensors, scale: Coefficient) -> None:
    """``x += scale * y`` for each pair.

    A tensor scale goes through ``addcmul`` (``x + y * scale``), which rounds as ``add``
    with ``alpha=`` does for a number: a scheduled value gives the same numbers whether
    it is a tensor or a Python number.
    """
    if is_tensor(scale):
        torch._foreach_addcmul_(xs, ys, [scale] * len(xs))
    else:
        torch._foreach_add_(xs, ys, alpha=scale)


def added_scaled(xs: Tensors, ys: Tensors, scale: Coefficient) -> Tensors:
    """New tensors ``x + scale * y`` (rounded as in ``add_scaled_``)."""
    if is_tensor(scale):
        return torch._foreach_addcmul(xs, ys, [scale] * len(xs))
    return torch._foreach_add(xs, ys, alpha=scale)


def ema_(averages: Tensors, values: Tensors, decay: Coefficient) -> None:
    """``average = decay * average + (1 - decay) * value`` (an exponential moving average)."""
    if is_tensor(decay):
        torch._foreach_mul_(averages, decay)
        torch._foreach_add_(averages, torch._foreach_mul(values, 1 - decay))
    else:
        torch._foreach_lerp_(averages, values, 1 - decay)


def ema_of_squares_(averages: Tensors, values: Tensors, decay: Coefficient) -> None:
    """``average = decay * average + (1 - decay) * value**2``."""
    torch._foreach_mul_(averages, decay)
    if is_tensor(decay):
        torch._foreach_addcmul_(averages, torch._foreach_mul(values, 1 - decay), values)
    else:
        torch._foreach_addcmul_(averages, values, values, 1 - decay)


def addcdiv_(xs: Tensors, numerators: Tensors, denominators: Tensors, scale, scratch: bool = True) -> None:
    """``x += scale * numerator / denominator``; ``scale`` is a number, a 0-d tensor or a vector.

    A vector has one entry per tensor (a per-parameter step size, a tensor whatever the
    hyperparameters are): it divides the denominators first, in place when they are
    ``scratch``, else into new tensors. ``addcdiv``'s ``value=`` takes numbers only, so a
    0-d tensor (a scheduled value) is applied by hand, in the order the device's own
    ``addcdiv`` kernel rounds a number in: ``x + (value * n) / d`` on the CPU,
    ``x + value * (n / d)`` elsewhere. A scheduled value thus gives the same numbers as a
    tensor as it does as a Python number.
    """
    if not is_tensor(scale):
        torch._foreach_addcdiv_(xs, numerators, denominators, scale)
    elif scale.dim() == 1:
        divisor = per_tensor(scale)
        if scratch:
            torch._foreach_div_(denominators, divisor)
        else:
            denominators = torch._foreach_div(denominators, divisor)
        torch._foreach_addcdiv_(xs, numerators, denominators)
    elif xs and xs[0].device.type == "cpu":
        torch._foreach_addcdiv_(xs, torch._foreach_mul(numerators, scale), denominators)
    else:
        torch._foreach_addcmul_(xs, torch._foreach_div(numerators, denominators), [scale] * len(xs))


def regularized_grads(grads: Tensors, params: Tensors, weight_decay: Coefficient, maximize: bool = False) -> Tensors:
    """The gradients with the L2 term (``-grad`` first when maximizing); the originals are not changed."""
    if maximize:
        grads = torch._foreach_neg(grads)
        if matters(weight_decay):
            add_scaled_(grads, params, weight_decay)
        return grads
    if matters(weight_decay):
        return added_scaled(grads, params, weight_decay)
    return grads


def decay_weights_(params: Tensors, lr: Coefficient, weight_decay: Coefficient) -> None:
    """Decoupled weight decay: ``p *= 1 - lr * weight_decay``."""
    if matters(weight_decay):
        torch._foreach_mul_(params, 1 - lr * weight_decay)
