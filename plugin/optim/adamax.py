"""Adamax as cerebras-pytorch defines it (``eps`` 1e-6, ``beta1_power`` as state)."""
from __future__ import annotations

from typing import Any, Dict, Tuple

import torch

from . import _validation as V
from ._multi_tensor import Bucket, MultiTensorOptimizer, scalar_slot, zeros_slot
from .functional import adamax as adamax_kernel


class Adamax(MultiTensorOptimizer):
    """Adamax (Kingma & Ba, 2015): Adam with the infinity norm in place of the second moment.

    State: ``exp_avg``, ``exp_inf`` and ``beta1_power`` (``beta1**t`` for the coming
    step). ``load_state_dict`` also accepts torch.optim.Adamax's state, whose ``step``
    count becomes ``beta1_power``.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        maximize: bool = False,
    ):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group: Dict[str, Any]) -> None:
        owner = type(self).__name__
        V.common(owner, group)
        V.require_betas(owner, group["betas"])
        V.require_non_negative(owner, "eps", group["eps"])
        V.require_bool(owner, "maximize", group["maximize"])

    def _state_slots(self, group):
        return {"exp_avg": zeros_slot(), "exp_inf": zeros_slot(), "beta1_power": scalar_slot(group["betas"][0])}

    def _update(self, group: Dict[str, Any], bucket: Bucket) -> None:
        beta1, beta2 = group["betas"]
        adamax_kernel(
            bucket.params,
            bucket.grads,
            bucket.state["exp_avg"],
            bucket.state["exp_inf"],
            bucket.scalars["beta1_power"],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
        )

    def _translate_param_state(self, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        """torch.optim counts the steps taken (``k``); the next step's power is ``beta1**(k + 1)``."""
        if "step" in state and "beta1_power" not in state:
            taken = float(state.pop("step"))
            state["beta1_power"] = torch.as_tensor(group["betas"][0], dtype=torch.float64) ** (taken + 1)
