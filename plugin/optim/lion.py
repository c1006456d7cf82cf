"""Lion as cerebras-pytorch defines it."""
from __future__ import annotations

from typing import Any, Dict, Tuple

from . import _validation as V
from ._multi_tensor import Bucket, MultiTensorOptimizer, zeros_slot
from .functional import lion as lion_kernel


class Lion(MultiTensorOptimizer):
    """Lion (Chen et al., 2023): steps of ``lr * sign(...)`` of an interpolated momentum.

    ``weight_decay`` is decoupled (``p *= 1 - lr * weight_decay``). State: ``exp_avg``.
    """

    def __init__(self, params, lr: float = 1e-4, betas: Tuple[float, float] = (0.9, 0.99), weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    def _validate(self, group: Dict[str, Any]) -> None:
        owner = type(self).__name__
        V.common(owner, group)
        V.require_betas(owner, group["betas"])

    def _state_slots(self, group):
        return {"exp_avg": zeros_slot()}

    def _update(self, group: Dict[str, Any], bucket: Bucket) -> None:
        beta1, beta2 = group["betas"]
        lion_kernel(
            bucket.params,
            bucket.grads,
            bucket.state["exp_avg"],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
        )
