"""LAMB as cerebras-pytorch defines it (``eps`` 1e-6, no bias correction)."""
from __future__ import annotations

from typing import Any, Dict, Tuple

from . import _validation as V
from ._multi_tensor import Bucket, MultiTensorOptimizer, zeros_slot
from .functional import lamb as lamb_kernel


class Lamb(MultiTensorOptimizer):
    """LAMB (You et al., 2019): Adam steps scaled per parameter by a trust ratio.

    The trust ratio is ``min(|p|, 10) / |update|`` (1 where either norm is 0);
    ``adam=True`` fixes it at 1, which turns this into Adam without bias correction.
    ``weight_decay`` is added to the update before the trust ratio.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0,
        adam: bool = False,
    ):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, adam=adam)
        super().__init__(params, defaults)

    def _validate(self, group: Dict[str, Any]) -> None:
        owner = type(self).__name__
        V.common(owner, group)
        V.require_betas(owner, group["betas"])
        V.require_non_negative(owner, "eps", group["eps"])
        V.require_bool(owner, "adam", group["adam"])

    def _state_slots(self, group):
        return {"exp_avg": zeros_slot(), "exp_avg_sq": zeros_slot()}

    def _update(self, group: Dict[str, Any], bucket: Bucket) -> None:
        beta1, beta2 = group["betas"]
        lamb_kernel(
            bucket.params,
            bucket.grads,
            bucket.state["exp_avg"],
            bucket.state["exp_avg_sq"],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            adam=group["adam"],
        )
