"""The LAMB step of cerebras-pytorch, on a bucket of tensors (no bias correction).

    m = beta1 m + (1 - beta1) g     v = beta2 v + (1 - beta2) g**2
    u = m / (sqrt(v) + eps) + weight_decay * p
    p -= lr * trust * u,   trust = min(|p|, 10) / |u|   (1 where either norm is 0, or with adam=True)
"""
from __future__ import annotations

from typing import List

import torch
from torch import Tensor

from .._scalars import scalar_dtype
from ._foreach import Coefficient, add_scalar_, add_scaled_, ema_, ema_of_squares_, matters, on_device, per_tensor


def lamb(
    params: List[Tensor],
    grads: List[Tensor],
    exp_avgs: List[Tensor],
    exp_avg_sqs: List[Tensor],
    *,
    lr: Coefficient,
    beta1: float,
    beta2: float,
    eps: Coefficient,
    weight_decay: Coefficient,
    adam: bool,
) -> None:
    """One LAMB step on tensors of one device and dtype."""
    if not params:
        return
    lr = on_device(lr, params[0])
    ema_(exp_avgs, grads, beta1)
    ema_of_squares_(exp_avg_sqs, grads, beta2)
    denominators = torch._foreach_sqrt(exp_avg_sqs)
    add_scalar_(denominators, eps)
    updates = torch._foreach_div(exp_avgs, denominators)
    if matters(weight_decay):
        add_scaled_(updates, params, on_device(weight_decay, params[0]))
    if adam:
        add_scaled_(params, updates, -lr)
        return
    dtype = scalar_dtype(params[0])
    weight_norms = torch.stack(torch._foreach_norm(params, dtype=dtype)).clamp_(0, 10)
    update_norms = torch.stack(torch._foreach_norm(updates, dtype=dtype))
    ratio = torch.where(update_norms > 0, weight_norms / update_norms, 1.0)
    trust = torch.where(weight_norms > 0, ratio, 1.0)
    torch._foreach_mul_(updates, per_tensor(trust.mul_(-lr)))
    torch._foreach_add_(params, updates)
