"""The Adamax step of cerebras-pytorch, on a bucket of tensors.

    m = beta1 m + (1 - beta1) g     u = max(beta2 u, |g| + eps)
    p -= lr / (1 - beta1_power) * m / u      beta1_power *= beta1
"""
from __future__ import annotations

from typing import List

import torch
from torch import Tensor

from ._foreach import Coefficient, add_scalar_, addcdiv_, ema_, on_device, regularized_grads


def adamax(
    params: List[Tensor],
    grads: List[Tensor],
    exp_avgs: List[Tensor],
    exp_infs: List[Tensor],
    beta1_power: Tensor,
    *,
    lr: Coefficient,
    beta1: float,
    beta2: Coefficient,
    eps: Coefficient,
    weight_decay: Coefficient,
    maximize: bool,
) -> None:
    """One Adamax step; ``beta1_power`` is a vector with one entry per parameter."""
    if not params:
        return
    lr = on_device(lr, params[0])
    grads = regularized_grads(grads, params, on_device(weight_decay, params[0]), maximize)
    ema_(exp_avgs, grads, beta1)
    torch._foreach_mul_(exp_infs, beta2)
    magnitudes = torch._foreach_abs(grads)
    add_scalar_(magnitudes, eps)
    torch._foreach_maximum_(exp_infs, magnitudes)
    step_size = (1 - beta1_power).reciprocal_().mul_(-lr)
    beta1_power.mul_(beta1)
    addcdiv_(params, exp_avgs, exp_infs, step_size, scratch=False)
