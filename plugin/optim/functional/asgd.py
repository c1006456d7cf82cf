"""The ASGD (averaged SGD) step of cerebras-pytorch, on a bucket of tensors.

    step += 1       p = p * (1 - lambd * eta) - eta * g
    ax = p if mu == 1 else ax + mu * (p - ax)
    eta = lr / (1 + lambd * lr * step) ** alpha      mu = 1 / max(1, step - t0)
"""
from __future__ import annotations

from typing import List

import torch
from torch import Tensor

from ._foreach import Coefficient, on_device, per_tensor, regularized_grads


def asgd(
    params: List[Tensor],
    grads: List[Tensor],
    axs: List[Tensor],
    step: Tensor,
    eta: Tensor,
    mu: Tensor,
    *,
    lr: Coefficient,
    lambd: Coefficient,
    alpha: Coefficient,
    t0: Coefficient,
    weight_decay: Coefficient,
    maximize: bool,
) -> None:
    """One ASGD step; ``step``, ``eta`` and ``mu`` are vectors with one entry per parameter."""
    if not params:
        return
    lr = on_device(lr, params[0])
    step.add_(1)
    grads = regularized_grads(grads, params, on_device(weight_decay, params[0]), maximize)
    torch._foreach_mul_(params, per_tensor(1 - lambd * eta))
    torch._foreach_add_(params, torch._foreach_mul(grads, per_tensor(-eta)))
    # lerp with weight 1 returns the end point exactly: the average is the parameter while mu == 1.
    torch._foreach_lerp_(axs, params, list(per_tensor(mu)))
    # reciprocal, then times lr: what `number / tensor` computes, written out so that a tensor lr
    # (whose `/` would be a true division) gives the same numbers.
    eta.copy_((step * (lambd * lr)).add_(1).pow_(alpha).reciprocal_().mul_(lr))
    mu.copy_((step - t0).clamp_(min=1).reciprocal_())
