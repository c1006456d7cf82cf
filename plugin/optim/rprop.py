"""Rprop as cerebras-pytorch defines it."""
from __future__ import annotations

from typing import Any, Dict, Tuple

from . import _validation as V
from ._multi_tensor import Bucket, MultiTensorOptimizer, full_slot, zeros_slot
from .functional import rprop as rprop_kernel


class Rprop(MultiTensorOptimizer):
    """Resilient backpropagation (Riedmiller & Braun, 1993): sign-based steps with adaptive sizes.

    Each element's step size starts at ``lr``, is multiplied by ``etas[1]`` while the
    gradient keeps its sign and by ``etas[0]`` when it flips, within ``step_sizes``.
    State: ``prev`` and ``step_size``. ``load_state_dict`` also accepts
    torch.optim.Rprop's state (its ``step`` counter is not needed and is dropped).

    The gradients are not modified (cerebras-pytorch 2.10.0 zeroes entries of ``p.grad``
    in place where the sign flipped).
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        etas: Tuple[float, float] = (0.5, 1.2),
        step_sizes: Tuple[float, float] = (1e-6, 50.0),
    ):
        super().__init__(params, dict(lr=lr, etas=etas, step_sizes=step_sizes))

    def _validate(self, group: Dict[str, Any]) -> None:
        owner = type(self).__name__
        V.common(owner, group)
        etaminus, etaplus = V.require_pair(owner, "etas", group["etas"])
        smallest, largest = V.require_pair(owner, "step_sizes", group["step_sizes"])
        for name, value in (("etas[0]", etaminus), ("etas[1]", etaplus), ("step_sizes[0]", smallest), ("step_sizes[1]", largest)):
            V.require_python_number(owner, name, value)
        if not 0.0 < etaminus < 1.0 <= etaplus:
            raise ValueError(
                f"{owner}: invalid `etas` {tuple(group['etas'])!r}; a step size must shrink when the gradient "
                f"flips and not shrink while it keeps its sign: 0 < etas[0] < 1 <= etas[1]."
            )
        if not 0.0 <= smallest <= largest:
            raise ValueError(
                f"{owner}: invalid `step_sizes` {tuple(group['step_sizes'])!r}; expected "
                f"0 <= step_sizes[0] <= step_sizes[1] (the smallest and largest step size)."
            )

    def _state_slots(self, group):
        return {"prev": zeros_slot(), "step_size": full_slot(group["lr"])}

    def _update(self, group: Dict[str, Any], bucket: Bucket) -> None:
        etaminus, etaplus = group["etas"]
        smallest, largest = group["step_sizes"]
        rprop_kernel(
            bucket.params,
            bucket.grads,
            bucket.state["prev"],
            bucket.state["step_size"],
            etaminus=etaminus,
            etaplus=etaplus,
            step_size_min=smallest,
            step_size_max=largest,
        )
