"""The Adam/AdamW step of cerebras-pytorch, on a bucket of tensors.

Bias correction uses ``beta1_power`` and ``beta2_power`` (``beta**t`` for the coming
step ``t``, multiplied by ``beta`` after each step) instead of recomputing the powers,
and ``eps`` is added to ``sqrt(exp_avg_sq)`` before the correction:

    m = beta1 m + (1 - beta1) g          v = beta2 v + (1 - beta2) g**2
    p -= lr * (sqrt(1 - beta2_power) / (1 - beta1_power) * m / (sqrt(v) + eps) + weight_decay * p)

``g`` includes the L2 term ``l2_regularization_rate * p`` (Adam's weight decay);
``weight_decay`` is the decoupled one (AdamW's).
"""
from __future__ import annotations

from typing import List, Optional

import torch
from torch import Tensor

from ._foreach import Coefficient, add_scalar_, addcdiv_, decay_weights_, ema_, ema_of_squares_, on_device, regularized_grads


def adam(
    params: List[Tensor],
    grads: List[Tensor],
    exp_avgs: List[Tensor],
    exp_avg_sqs: List[Tensor],
    max_exp_avg_sqs: Optional[List[Tensor]],
    beta1_power: Optional[Tensor],
    beta2_power: Optional[Tensor],
    *,
    lr: Coefficient,
    beta1: float,
    beta2: float,
    eps: Coefficient,
    weight_decay: Coefficient,
    l2_regularization_rate: Coefficient,
    correct_bias: bool,
    amsgrad: bool,
) -> None:
    """One Adam(W) step on tensors of one device and dtype; state is updated in place.

    ``beta1_power``/``beta2_power`` are vectors with one entry per parameter (None when
    ``correct_bias`` is off); ``max_exp_avg_sqs`` is used when ``amsgrad`` is on.
    """
    if not params:
        return
    lr = on_device(lr, params[0])
    weight_decay = on_device(weight_decay, params[0])
    grads = regularized_grads(grads, params, on_device(l2_regularization_rate, params[0]))
    ema_(exp_avgs, grads, beta1)
    ema_of_squares_(exp_avg_sqs, grads, beta2)
    second_moments = exp_avg_sqs
    if amsgrad:
        torch._foreach_maximum_(max_exp_avg_sqs, exp_avg_sqs)
        second_moments = max_exp_avg_sqs
    denominators = torch._foreach_sqrt(second_moments)
    add_scalar_(denominators, eps)
    decay_weights_(params, lr, weight_decay)
    if correct_bias:
        step_size = (1 - beta2_power).sqrt_().div_(1 - beta1_power).mul_(-lr)
        beta1_power.mul_(beta1)
        beta2_power.mul_(beta2)
        addcdiv_(params, exp_avgs, denominators, step_size)
    else:
        addcdiv_(params, exp_avgs, denominators, -lr)
