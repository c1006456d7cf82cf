"""NAdam with cerebras-pytorch's arguments and state layout, and the paper's update."""
from __future__ import annotations

from typing import Any, Dict, Tuple

from . import _validation as V
from ._multi_tensor import Bucket, MultiTensorOptimizer, scalar_slot, zeros_slot
from .functional import nadam as nadam_kernel


class NAdam(MultiTensorOptimizer):
    """NAdam (Dozat, 2016): Adam with Nesterov momentum and a momentum schedule.

    State: ``mu_product``, ``exp_avg``, ``exp_avg_sq`` and ``step``, the layout of
    torch.optim.NAdam, whose state ``load_state_dict`` accepts as is.

    The momentum term is divided by ``1 - mu_product * mu_{t+1}``, as in the paper and
    torch.optim.NAdam. cerebras-pytorch 2.10.0 divides by
    ``1 - mu_product * mu_t * mu_{t+1}`` (``mu_t`` counted twice), so its first steps
    are larger; the two converge as ``mu_product`` vanishes.
    """

    def __init__(
        self,
        params,
        lr: float = 2e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
    ):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay)
        super().__init__(params, defaults, enable_global_step=True)

    def _validate(self, group: Dict[str, Any]) -> None:
        owner = type(self).__name__
        V.common(owner, group)
        V.require_betas(owner, group["betas"])
        V.require_non_negative(owner, "eps", group["eps"])
        V.require_non_negative(owner, "momentum_decay", group["momentum_decay"])

    def _state_slots(self, group):
        return {"mu_product": scalar_slot(1.0), "exp_avg": zeros_slot(), "exp_avg_sq": zeros_slot(), "step": scalar_slot(0.0)}

    def _update(self, group: Dict[str, Any], bucket: Bucket) -> None:
        beta1, beta2 = group["betas"]
        nadam_kernel(
            bucket.params,
            bucket.grads,
            bucket.state["exp_avg"],
            bucket.state["exp_avg_sq"],
            bucket.scalars["step"],
            bucket.scalars["mu_product"],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum_decay=group["momentum_decay"],
        )
