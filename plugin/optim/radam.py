"""RAdam as cerebras-pytorch defines it (``eps`` 1e-6)."""
from __future__ import annotations

from typing import Any, Dict, Tuple

from . import _validation as V
from ._multi_tensor import Bucket, MultiTensorOptimizer, scalar_slot, zeros_slot
from .functional import radam as radam_kernel


class RAdam(MultiTensorOptimizer):
    """RAdam (Liu et al., 2020): Adam whose adaptive step is switched on once its variance is tractable.

    State: ``exp_avg``, ``exp_avg_sq`` and ``step``, the layout of torch.optim.RAdam,
    whose state ``load_state_dict`` accepts as is. ``weight_decay`` is L2.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay), enable_global_step=True)

    def _validate(self, group: Dict[str, Any]) -> None:
        owner = type(self).__name__
        V.common(owner, group)
        V.require_betas(owner, group["betas"])
        V.require_non_negative(owner, "eps", group["eps"])

    def _state_slots(self, group):
        return {"exp_avg": zeros_slot(), "exp_avg_sq": zeros_slot(), "step": scalar_slot(0.0)}

    def _update(self, group: Dict[str, Any], bucket: Bucket) -> None:
        beta1, beta2 = group["betas"]
        radam_kernel(
            bucket.params,
            bucket.grads,
            bucket.state["exp_avg"],
            bucket.state["exp_avg_sq"],
            bucket.scalars["step"],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
        )
