"""RMSprop as cerebras-pytorch defines it."""
from __future__ import annotations

from typing import Any, Dict

from . import _validation as V
from ._multi_tensor import Bucket, MultiTensorOptimizer, zeros_slot
from .functional import rmsprop as rmsprop_kernel


class RMSprop(MultiTensorOptimizer):
    """RMSprop (Hinton, 2012): steps scaled by a running RMS of the gradients.

    State: ``square_avg``, plus ``momentum_buffer`` when ``momentum > 0`` and
    ``grad_avg`` when ``centered``. ``load_state_dict`` also accepts
    torch.optim.RMSprop's state (its ``step`` counter is not needed and is dropped).
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
    ):
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered, weight_decay=weight_decay)
        super().__init__(params, defaults)

    def _validate(self, group: Dict[str, Any]) -> None:
        owner = type(self).__name__
        V.common(owner, group)
        V.require_non_negative(owner, "eps", group["eps"])
        V.require_non_negative(owner, "alpha", group["alpha"])
        V.require_python_number(owner, "momentum", group["momentum"])
        V.require_non_negative(owner, "momentum", group["momentum"])
        V.require_bool(owner, "centered", group["centered"])

    def _state_slots(self, group):
        slots = {"square_avg": zeros_slot()}
        if group["momentum"] > 0:
            slots["momentum_buffer"] = zeros_slot()
        if group["centered"]:
            slots["grad_avg"] = zeros_slot()
        return slots

    def _update(self, group: Dict[str, Any], bucket: Bucket) -> None:
        rmsprop_kernel(
            bucket.params,
            bucket.grads,
            bucket.state["square_avg"],
            bucket.state.get("grad_avg"),
            bucket.state.get("momentum_buffer"),
            lr=group["lr"],
            alpha=group["alpha"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            centered=group["centered"],
        )
