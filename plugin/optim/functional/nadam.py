"""The NAdam step (Dozat, 2016), on a bucket of tensors.

    step += 1     mu_t = beta1 (1 - 0.5 * 0.96 ** (step * momentum_decay))
    mu_product *= mu_t
    p -= lr * [(1 - mu_t) / (1 - mu_product) * g
               + mu_{t+1} / (1 - mu_product * mu_{t+1}) * m] / (sqrt(v / (1 - beta2**step)) + eps)

cerebras-pytorch 2.10.0 divides the momentum term by ``1 - mu_product * mu_t * mu_{t+1}``
(``mu_t`` counted twice); this follows the paper and torch.optim.NAdam instead.
"""
from __future__ import annotations

from typing import List

import torch
from torch import Tensor

from ._foreach import Coefficient, add_scalar_, ema_, ema_of_squares_, on_device, per_tensor, regularized_grads


def nadam(
    params: List[Tensor],
    grads: List[Tensor],
    exp_avgs: List[Tensor],
    exp_avg_sqs: List[Tensor],
    step: Tensor,
    mu_product: Tensor,
    *,
    lr: Coefficient,
    beta1: float,
    beta2: float,
    eps: Coefficient,
    weight_decay: Coefficient,
    momentum_decay: Coefficient,
) -> None:
    """One NAdam step; ``step`` and ``mu_product`` are vectors with one entry per parameter."""
    if not params:
        return
    lr = on_device(lr, params[0])
    step.add_(1)
    grads = regularized_grads(grads, params, on_device(weight_decay, params[0]))
    bias_correction2 = 1 - torch.pow(beta2, step)
    mu = beta1 * (1 - 0.5 * torch.pow(0.96, step * momentum_decay))
    mu_next = beta1 * (1 - 0.5 * torch.pow(0.96, (step + 1) * momentum_decay))
    mu_product.mul_(mu)
    ema_(exp_avgs, grads, beta1)
    ema_of_squares_(exp_avg_sqs, grads, beta2)
    denominators = torch._foreach_div(exp_avg_sqs, per_tensor(bias_correction2))
    torch._foreach_sqrt_(denominators)
    add_scalar_(denominators, eps)
    grad_coefficient = (1 - mu).div_(1 - mu_product).mul_(-lr)
    momentum_coefficient = mu_next.div(1 - mu_product * mu_next).mul_(-lr)
    updates = torch._foreach_mul(grads, per_tensor(grad_coefficient))
    torch._foreach_add_(updates, torch._foreach_mul(exp_avgs, per_tensor(momentum_coefficient)))
    torch._foreach_addcdiv_(params, updates, denominators)
