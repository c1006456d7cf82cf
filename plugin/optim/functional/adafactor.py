"""The Adafactor step (Shazeer & Stern, 2018) as cerebras-pytorch and Hugging Face compute it.

For a parameter of 2 or more dimensions the second moment is factored into row and
column averages (``exp_avg_sq_row``, ``exp_avg_sq_col``); otherwise it is kept whole
(``exp_avg_sq``). With ``decay_t = step ** decay_rate``:

    v_t   = (1 - decay_t) v + decay_t (g**2 + eps1)          (per row/column when factored)
    u     = g / sqrt(v_t)   (factored: g * rsqrt(row / mean(row)) * rsqrt(col))
    u     = u / max(rms(u) / clip_threshold, 1)
    alpha = rho_t * (max(rms(p), eps2) if scale_parameter else 1)
    rho_t = lr, or min(1e-2, 1/sqrt(step)) with relative_step (min(1e-6 step, 1/sqrt(step)) with warmup_init)
    m     = beta1 m + (1 - beta1) alpha u   (when beta1 is set; the update is then m)
    p    -= weight_decay * alpha * p + alpha u
"""
from __future__ import annotations

import math
from typing import List, Optional

import torch
from torch import Tensor

from .._scalars import scalar_dtype
from ._foreach import Coefficient, add_scalar_, is_tensor, matters, on_device, per_tensor


def _rms(tensors: List[Tensor], dtype: torch.dtype) -> Tensor:
    """The root mean square of each tensor, as a vector."""
    norms = torch._foreach_norm(tensors, dtype=dtype)
    torch._foreach_div_(norms, [math.sqrt(t.numel()) for t in tensors])
    return torch.stack(norms)


def _relative_step_size(step: Tensor, warmup_init: bool) -> Tensor:
    if warmup_init:
        return torch.minimum(step * 1e-6, step.rsqrt())
    return step.rsqrt().clamp_(max=1e-2)


def adafactor(
    params: List[Tensor],
    grads: List[Tensor],
    exp_avgs: Optional[List[Tensor]],
    exp_avg_sqs: List[Optional[Tensor]],
    exp_avg_sq_rows: List[Optional[Tensor]],
    exp_avg_sq_cols: List[Optional[Tensor]],
    step: Tensor,
    *,
    lr: Optional[Coefficient],
    eps1: Coefficient,
    eps2: Coefficient,
    clip_threshold: Coefficient,
    decay_rate: Coefficient,
    beta1: Optional[float],
    weight_decay: Coefficient,
    scale_parameter: bool,
    relative_step: bool,
    warmup_init: bool,
) -> None:
    """One Adafactor step; ``step`` is a vector with one counter per parameter.

    Per parameter, either ``exp_avg_sqs`` (fewer than 2 dimensions) or the row and
    column entries (2 or more) are tensors, the others None. ``exp_avgs`` is used when
    ``beta1`` is set.
    """
    if not params:
        return
    dtype = scalar_dtype(params[0])
    step.add_(1)
    if relative_step:
        step_size = _relative_step_size(step, warmup_init)
    elif lr is None:
        raise ValueError(
            "Adafactor: the learning rate of a param group is None; pass `lr`, set it with a learning-rate "
            "scheduler before stepping, or use relative_step=True."
        )
    else:
        step_size = torch.ones_like(step).mul_(on_device(lr, params[0]))
    if scale_parameter:
        rms = _rms(params, dtype)
        floor = on_device(eps2, params[0])
        step_size = (torch.maximum(rms, floor.to(dtype)) if is_tensor(floor) else rms.clamp_(min=floor)).mul_(step_size)

    new_weight = step.pow(decay_rate)  # 1 - beta2_t
    old_weight = 1 - new_weight
    squares = torch._foreach_mul(grads, grads)
    add_scalar_(squares, eps1)

    updates: List[Optional[Tensor]] = [None] * len(params)
    whole = [i for i, v in enumerate(exp_avg_sqs) if v is not None]
    factored = [i for i, row in enumerate(exp_avg_sq_rows) if row is not None]
    old_weights, new_weights = per_tensor(old_weight), per_tensor(new_weight)
    if whole:
        variances = [exp_avg_sqs[i] for i in whole]
        torch._foreach_mul_(variances, [old_weights[i] for i in whole])
        torch._foreach_add_(variances, torch._foreach_mul([squares[i] for i in whole], [new_weights[i] for i in whole]))
        scaled = torch._foreach_rsqrt(variances)
        torch._foreach_mul_(scaled, [grads[i] for i in whole])
        for i, update in zip(whole, scaled):
            updates[i] = update
    for i in factored:
        row, col = exp_avg_sq_rows[i], exp_avg_sq_cols[i]
        row.mul_(old_weights[i]).add_(squares[i].mean(dim=-1).mul_(new_weights[i]))
        col.mul_(old_weights[i]).add_(squares[i].mean(dim=-2).mul_(new_weights[i]))
        row_factor = (row / row.mean(dim=-1, keepdim=True)).rsqrt_().unsqueeze(-1)
        col_factor = col.rsqrt().unsqueeze(-2)
        updates[i] = (row_factor * col_factor).mul_(grads[i])

    clip = on_device(clip_threshold, params[0])
    scale = step_size / (_rms(updates, dtype) / clip).clamp_(min=1)
    torch._foreach_mul_(updates, per_tensor(scale))
    if beta1 is not None:
        # Not a lerp: a factored update may be float32 beside a lower-precision average.
        torch._foreach_mul_(exp_avgs, beta1)
        torch._foreach_add_(exp_avgs, torch._foreach_mul(updates, 1 - beta1))
        updates = exp_avgs
    if matters(weight_decay):
        torch._foreach_mul_(params, per_tensor(1 - on_device(weight_decay, params[0]) * step_size))
    torch._foreach_sub_(params, updates)
