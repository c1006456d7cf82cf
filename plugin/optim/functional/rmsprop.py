"""The RMSprop step of cerebras-pytorch, on a bucket of tensors.

    v = alpha v + (1 - alpha) g**2        (centered: a = alpha a + (1 - alpha) g, v - a**2 below)
    d = sqrt(v) + eps
    p -= lr * g / d                       (momentum: b = momentum b + g / d, p -= lr * b)
"""
from __future__ import annotations

from typing import List, Optional

import torch
from torch import Tensor

from ._foreach import Coefficient, add_scalar_, add_scaled_, addcdiv_, ema_, ema_of_squares_, on_device, regularized_grads


def rmsprop(
    params: List[Tensor],
    grads: List[Tensor],
    square_avgs: List[Tensor],
    grad_avgs: Optional[List[Tensor]],
    momentum_buffers: Optional[List[Tensor]],
    *,
    lr: Coefficient,
    alpha: Coefficient,
    eps: Coefficient,
    weight_decay: Coefficient,
    momentum: float,
    centered: bool,
) -> None:
    """One RMSprop step (``grad_avgs`` used when centered, buffers when ``momentum > 0``)."""
    if not params:
        return
    lr = on_device(lr, params[0])
    grads = regularized_grads(grads, params, on_device(weight_decay, params[0]))
    ema_of_squares_(square_avgs, grads, alpha)
    if centered:
        ema_(grad_avgs, grads, alpha)
        denominators = torch._foreach_addcmul(square_avgs, grad_avgs, grad_avgs, value=-1)
        torch._foreach_sqrt_(denominators)
    else:
        denominators = torch._foreach_sqrt(square_avgs)
    add_scalar_(denominators, eps)
    if momentum > 0:
        torch._foreach_mul_(momentum_buffers, momentum)
        torch._foreach_addcdiv_(momentum_buffers, grads, denominators)
        add_scaled_(params, momentum_buffers, -lr)
    else:
        addcdiv_(params, grads, denominators, -lr)
