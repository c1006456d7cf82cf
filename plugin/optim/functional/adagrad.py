"""The Adagrad step of cerebras-pytorch, on a bucket of tensors.

    step += 1      sum += g**2      p -= lr / (1 + (step - 1) * lr_decay) * g / (sqrt(sum) + eps)
"""
from __future__ import annotations

from typing import List

import torch
from torch import Tensor

from ._foreach import Coefficient, add_scalar_, addcdiv_, is_tensor, on_device, regularized_grads


def adagrad(
    params: List[Tensor],
    grads: List[Tensor],
    state_sums: List[Tensor],
    step: Tensor,
    *,
    lr: Coefficient,
    lr_decay: Coefficient,
    weight_decay: Coefficient,
    eps: Coefficient,
    maximize: bool,
) -> None:
    """One Adagrad step; ``step`` is a vector with one counter per parameter."""
    if not params:
        return
    lr = on_device(lr, params[0])
    step.add_(1)
    grads = regularized_grads(grads, params, on_device(weight_decay, params[0]), maximize)
    torch._foreach_addcmul_(state_sums, grads, grads)
    std = torch._foreach_sqrt(state_sums)
    add_scalar_(std, eps)
    if is_tensor(lr_decay) or lr_decay != 0:
        addcdiv_(params, grads, std, (step - 1).mul_(lr_decay).add_(1).reciprocal_().mul_(-lr))
    else:
        addcdiv_(params, grads, std, -lr)
