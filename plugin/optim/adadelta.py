"""Adadelta as cerebras-pytorch defines it."""
from __future__ import annotations

from typing import Any, Dict

from . import _validation as V
from ._multi_tensor import Bucket, MultiTensorOptimizer, zeros_slot
from .functional import adadelta as adadelta_kernel


class Adadelta(MultiTensorOptimizer):
    """Adadelta (Zeiler, 2012): steps scaled by the ratio of running RMS of updates and gradients.

    State: ``square_avg`` and ``acc_delta``. ``load_state_dict`` also accepts
    torch.optim.Adadelta's state (its ``step`` counter is not needed and is dropped).
    """

    def __init__(
        self,
        params,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        maximize: bool = False,
    ):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group: Dict[str, Any]) -> None:
        owner = type(self).__name__
        V.common(owner, group)
        V.require_in_range(owner, "rho", group["rho"], 0.0, 1.0, high_inclusive=True)
        V.require_non_negative(owner, "eps", group["eps"])
        V.require_bool(owner, "maximize", group["maximize"])

    def _state_slots(self, group):
        return {"square_avg": zeros_slot(), "acc_delta": zeros_slot()}

    def _update(self, group: Dict[str, Any], bucket: Bucket) -> None:
        adadelta_kernel(
            bucket.params,
            bucket.grads,
            bucket.state["square_avg"],
            bucket.state["acc_delta"],
            lr=group["lr"],
            rho=group["rho"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
        )
