"""SGD with momentum as cerebras-pytorch defines it (a zero momentum buffer allocated up front)."""
from __future__ import annotations

from typing import Any, Dict

from . import _validation as V
from ._multi_tensor import Bucket, MultiTensorOptimizer, zeros_slot
from .functional import sgd as sgd_kernel


class SGD(MultiTensorOptimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum and L2 weight decay.

    The momentum buffer exists from construction (zero) and is damped from the first
    step: ``buf = momentum * buf + (1 - dampening) * g``. torch.optim.SGD starts it at
    the first gradient, undamped; with ``dampening == 0`` the two agree.
    ``load_state_dict`` also accepts torch.optim.SGD's state (the same layout).
    """

    def __init__(
        self,
        params,
        lr: float,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        maximize: bool = False,
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _validate(self, group: Dict[str, Any]) -> None:
        owner = type(self).__name__
        V.common(owner, group)
        V.require_python_number(owner, "momentum", group["momentum"])
        V.require_non_negative(owner, "momentum", group["momentum"])
        V.require_python_number(owner, "dampening", group["dampening"])
        V.require_bool(owner, "nesterov", group["nesterov"])
        V.require_bool(owner, "maximize", group["maximize"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"{owner}: Nesterov momentum needs momentum > 0 and dampening == 0, got momentum="
                f"{group['momentum']!r} and dampening={group['dampening']!r}; set them so, or nesterov=False."
            )

    def _state_slots(self, group):
        return {"momentum_buffer": zeros_slot()} if group["momentum"] != 0 else {}

    def _update(self, group: Dict[str, Any], bucket: Bucket) -> None:
        sgd_kernel(
            bucket.params,
            bucket.grads,
            bucket.state.get("momentum_buffer"),
            lr=group["lr"],
            momentum=group["momentum"],
            dampening=group["dampening"],
            weight_decay=group["weight_decay"],
            nesterov=group["nesterov"],
            maximize=group["maximize"],
        )
