"""ASGD (averaged SGD) as cerebras-pytorch defines it."""
from __future__ import annotations

from typing import Any, Dict

from . import _validation as V
from ._multi_tensor import Bucket, MultiTensorOptimizer, scalar_slot, zeros_slot
from .functional import asgd as asgd_kernel


class ASGD(MultiTensorOptimizer):
    """Averaged stochastic gradient descent (Polyak & Juditsky, 1992).

    ``ax`` holds the running average of the parameters, started once ``step > t0``;
    ``eta`` and ``mu`` are the current step size and averaging weight. The layout
    (``eta``, ``mu``, ``ax``, ``step``) is torch.optim.ASGD's, whose state
    ``load_state_dict`` accepts as is.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        maximize: bool = False,
    ):
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults, enable_global_step=True)

    def _validate(self, group: Dict[str, Any]) -> None:
        owner = type(self).__name__
        V.common(owner, group)
        V.require_non_negative(owner, "lambd", group["lambd"])
        V.require_number(owner, "alpha", group["alpha"])
        V.require_number(owner, "t0", group["t0"])
        V.require_bool(owner, "maximize", group["maximize"])

    def _state_slots(self, group):
        return {"eta": scalar_slot(group["lr"]), "mu": scalar_slot(1.0), "ax": zeros_slot(), "step": scalar_slot(0.0)}

    def _update(self, group: Dict[str, Any], bucket: Bucket) -> None:
        asgd_kernel(
            bucket.params,
            bucket.grads,
            bucket.state["ax"],
            bucket.scalars["step"],
            bucket.scalars["eta"],
            bucket.scalars["mu"],
            lr=group["lr"],
            lambd=group["lambd"],
            alpha=group["alpha"],
            t0=group["t0"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
        )
