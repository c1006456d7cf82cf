"""The Rprop (resilient backpropagation) step of cerebras-pytorch, on a bucket of tensors.

Each element's step size grows by ``etaplus`` while its gradient keeps its sign and
shrinks by ``etaminus`` when the sign flips (clamped to ``[step_size_min,
step_size_max]``); after a flip the gradient is forgotten (no step now, no comparison
next time). The parameter moves by ``-sign(g) * step_size``.
"""
from __future__ import annotations

from typing import List

import torch
from torch import Tensor


def rprop(
    params: List[Tensor],
    grads: List[Tensor],
    prevs: List[Tensor],
    step_sizes: List[Tensor],
    *,
    etaminus: float,
    etaplus: float,
    step_size_min: float,
    step_size_max: float,
) -> None:
    """One Rprop step on tensors of one device and dtype."""
    if not params:
        return
    signs = torch._foreach_mul(grads, prevs)
    torch._foreach_sign_(signs)
    kept = torch._foreach_clamp_min(signs, 0)  # 1 where the sign was kept, else 0
    flipped = torch._foreach_clamp_max(signs, 0)  # -1 where it flipped, else 0
    # etaplus, etaminus or 1 per element, as a sum of exactly representable terms.
    factors = torch._foreach_sub(flipped, kept)
    torch._foreach_add_(factors, 1)
    torch._foreach_add_(factors, kept, alpha=etaplus)
    torch._foreach_add_(factors, flipped, alpha=-etaminus)
    torch._foreach_mul_(step_sizes, factors)
    torch._foreach_clamp_min_(step_sizes, step_size_min)
    torch._foreach_clamp_max_(step_sizes, step_size_max)
    remembered = torch._foreach_addcmul(grads, grads, flipped)  # 0 where the sign flipped
    torch._foreach_copy_(prevs, remembered)
    torch._foreach_sign_(remembered)
    torch._foreach_addcmul_(params, remembered, step_sizes, value=-1)
