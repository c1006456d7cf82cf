"""The Lion step of cerebras-pytorch, on a bucket of tensors.

    p *= 1 - lr * weight_decay
    p -= lr * sign(beta1 m + (1 - beta1) g)
    m = beta2 m + (1 - beta2) g
"""
from __future__ import annotations

from typing import List

import torch
from torch import Tensor

from ._foreach import Coefficient, add_scaled_, decay_weights_, ema_, is_tensor, on_device


def lion(
    params: List[Tensor],
    grads: List[Tensor],
    exp_avgs: List[Tensor],
    *,
    lr: Coefficient,
    beta1: Coefficient,
    beta2: Coefficient,
    weight_decay: Coefficient,
) -> None:
    """One Lion step on tensors of one device and dtype."""
    if not params:
        return
    lr = on_device(lr, params[0])
    decay_weights_(params, lr, on_device(weight_decay, params[0]))
    if is_tensor(beta1):
        directions = torch._foreach_mul(exp_avgs, beta1)
        add_scaled_(directions, grads, 1 - beta1)
    else:
        directions = torch._foreach_lerp(exp_avgs, grads, 1 - beta1)
    torch._foreach_sign_(directions)
    add_scaled_(params, directions, -lr)
    ema_(exp_avgs, grads, beta2)
