"""The RAdam (rectified Adam) step of cerebras-pytorch, on a bucket of tensors.

With ``rho_inf = 2 / (1 - beta2) - 1`` and ``rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)``:

    p -= lr * m / (1 - beta1**t) * r_t * sqrt(1 - beta2**t) / (sqrt(v) + eps)   if rho_t > 5
    p -= lr * m / (1 - beta1**t)                                                otherwise

where ``r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``.
"""
from __future__ import annotations

from typing import List

import torch
from torch import Tensor

from ._foreach import Coefficient, add_scalar_, addcdiv_, ema_, ema_of_squares_, on_device, per_tensor, regularized_grads


def radam(
    params: List[Tensor],
    grads: List[Tensor],
    exp_avgs: List[Tensor],
    exp_avg_sqs: List[Tensor],
    step: Tensor,
    *,
    lr: Coefficient,
    beta1: float,
    beta2: float,
    eps: Coefficient,
    weight_decay: Coefficient,
) -> None:
    """One RAdam step; ``step`` is a vector with one counter per parameter."""
    if not params:
        return
    lr = on_device(lr, params[0])
    step.add_(1)
    grads = regularized_grads(grads, params, on_device(weight_decay, params[0]))
    ema_(exp_avgs, grads, beta1)
    ema_of_squares_(exp_avg_sqs, grads, beta2)
    bias_correction1 = 1 - torch.pow(beta1, step)
    beta2_t = torch.pow(beta2, step)
    bias_correction2 = 1 - beta2_t
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * beta2_t / bias_correction2
    rectified = rho_t > 5
    # The square root is NaN while rho_t < 4; those entries are not rectified and not used.
    rectification = torch.where(
        rectified, ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)).sqrt(), 1.0
    )
    # Adaptive denominators where rectified, 1 (plain momentum SGD) elsewhere.
    denominators = torch._foreach_sqrt(exp_avg_sqs)
    add_scalar_(denominators, eps)
    torch._foreach_mul_(denominators, per_tensor(torch.where(rectified, bias_correction2.rsqrt(), 0.0)))
    torch._foreach_add_(denominators, per_tensor(torch.where(rectified, 0.0, 1.0).to(step.dtype)))
    addcdiv_(params, exp_avgs, denominators, rectification.div_(bias_correction1).mul_(-lr))
