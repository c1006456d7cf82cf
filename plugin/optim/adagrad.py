"""Adagrad as cerebras-pytorch defines it (``eps`` 1e-6, a ``step`` per parameter)."""
from __future__ import annotations

from typing import Any, Dict

from . import _validation as V
from ._multi_tensor import Bucket, MultiTensorOptimizer, full_slot, scalar_slot
from .functional import adagrad as adagrad_kernel


class Adagrad(MultiTensorOptimizer):
    """Adagrad (Duchi et al., 2011): steps scaled by the root of the summed squared gradients.

    The learning rate decays as ``lr / (1 + (step - 1) * lr_decay)``. State: ``sum``
    (starting at ``initial_accumulator_value``) and ``step``, the layout of
    torch.optim.Adagrad, whose state ``load_state_dict`` accepts as is.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-6,
        maximize: bool = False,
    ):
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            maximize=maximize,
        )
        super().__init__(params, defaults, enable_global_step=True)

    def _validate(self, group: Dict[str, Any]) -> None:
        owner = type(self).__name__
        V.common(owner, group)
        V.require_non_negative(owner, "lr_decay", group["lr_decay"])
        V.require_non_negative(owner, "initial_accumulator_value", group["initial_accumulator_value"])
        V.require_non_negative(owner, "eps", group["eps"])
        V.require_bool(owner, "maximize", group["maximize"])

    def _state_slots(self, group):
        return {"sum": full_slot(group["initial_accumulator_value"]), "step": scalar_slot(0.0)}

    def _update(self, group: Dict[str, Any], bucket: Bucket) -> None:
        adagrad_kernel(
            bucket.params,
            bucket.grads,
            bucket.state["sum"],
            bucket.scalars["step"],
            lr=group["lr"],
            lr_decay=group["lr_decay"],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=group["maximize"],
        )
