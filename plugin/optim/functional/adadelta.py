"""The Adadelta step of cerebras-pytorch, on a bucket of tensors.

    v = rho v + (1 - rho) g**2      delta = sqrt(u + eps) / sqrt(v + eps) * g
    u = rho u + (1 - rho) delta**2  p -= lr * delta
"""
from __future__ import annotations

from typing import List

import torch
from torch import Tensor

from ._foreach import Coefficient, add_scaled_, added_scalar, ema_of_squares_, on_device, regularized_grads


def adadelta(
    params: List[Tensor],
    grads: List[Tensor],
    square_avgs: List[Tensor],
    acc_deltas: List[Tensor],
    *,
    lr: Coefficient,
    rho: Coefficient,
    eps: Coefficient,
    weight_decay: Coefficient,
    maximize: bool,
) -> None:
    """One Adadelta step on tensors of one device and dtype."""
    if not params:
        return
    lr = on_device(lr, params[0])
    grads = regularized_grads(grads, params, on_device(weight_decay, params[0]), maximize)
    ema_of_squares_(square_avgs, grads, rho)
    std = added_scalar(square_avgs, eps)
    torch._foreach_sqrt_(std)
    deltas = added_scalar(acc_deltas, eps)
    torch._foreach_sqrt_(deltas)
    torch._foreach_div_(deltas, std)
    torch._foreach_mul_(deltas, grads)
    ema_of_squares_(acc_deltas, deltas, rho)
    add_scaled_(params, deltas, -lr)
