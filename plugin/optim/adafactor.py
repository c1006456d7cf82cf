"""Adafactor with cerebras-pytorch's arguments and state layout, every documented switch included."""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch

from . import _validation as V
from ._multi_tensor import Bucket, MultiTensorOptimizer, Slot, scalar_slot, zeros_slot
from ._scalars import scalar_dtype
from .functional import adafactor as adafactor_kernel


def _factored(p: torch.Tensor) -> bool:
    return p.dim() >= 2


def _row_slot() -> Slot:
    return Slot(False, lambda p: torch.zeros(p.shape[:-1], dtype=scalar_dtype(p), device=p.device), _factored)


def _col_slot() -> Slot:
    return Slot(
        False, lambda p: torch.zeros(p.shape[:-2] + p.shape[-1:], dtype=scalar_dtype(p), device=p.device), _factored
    )


class Adafactor(MultiTensorOptimizer):
    """Adafactor (Shazeer & Stern, 2018): Adam-like steps with a factored second moment.

    A parameter of two or more dimensions keeps its second moment as row and column
    averages (``exp_avg_sq_row``, ``exp_avg_sq_col``); others keep ``exp_avg_sq``.
    With ``beta1`` set, a first moment ``exp_avg`` is kept too. Each parameter has a
    ``step``. The formulas are in ``wse.optim.functional.adafactor``.

    cerebras-pytorch 2.10.0 takes these arguments but refuses ``beta1``,
    ``clip_threshold != 1.0``, ``relative_step`` and ``warmup_init``; here they do what
    the algorithm (and Hugging Face's Adafactor, which it adapts) defines:

    * ``beta1``: the first-moment decay, applied to the clipped, scaled update;
    * ``clip_threshold``: updates whose RMS exceeds it are scaled down to it;
    * ``relative_step=True`` (with ``lr=None``): the step size is
      ``min(1e-2, 1/sqrt(step))``, or ``min(1e-6 * step, 1/sqrt(step))`` with
      ``warmup_init=True``.

    ``load_state_dict`` also accepts the state of Hugging Face's Adafactor (the same
    layout) and of torch.optim.Adafactor (``row_var``/``col_var``/``variance``, renamed);
    torch's update rule differs, so training then continues under this one's.
    """

    def __init__(
        self,
        params,
        lr: Optional[float],
        eps: Tuple[float, float] = (1e-30, 1e-3),
        clip_threshold: float = 1.0,
        decay_rate: float = -0.8,
        beta1: Optional[float] = None,
        weight_decay: float = 0.0,
        scale_parameter: bool = True,
        relative_step: bool = False,
        warmup_init: bool = False,
    ):
        defaults = dict(
            lr=lr,
            eps=eps,
            clip_threshold=clip_threshold,
            decay_rate=decay_rate,
            beta1=beta1,
            weight_decay=weight_decay,
            scale_parameter=scale_parameter,
            relative_step=relative_step,
            warmup_init=warmup_init,
        )
        super().__init__(params, defaults, enable_global_step=True)

    def _validate(self, group: Dict[str, Any]) -> None:
        owner = type(self).__name__
        V.common(owner, group)
        for switch in ("scale_parameter", "relative_step", "warmup_init"):
            V.require_bool(owner, switch, group[switch])
        if group["relative_step"] and group["lr"] is not None:
            raise ValueError(
                f"{owner}: `lr` and relative_step=True cannot be combined (the relative step replaces the "
                f"learning rate); pass lr=None, or relative_step=False."
            )
        if group["warmup_init"] and not group["relative_step"]:
            raise ValueError(f"{owner}: warmup_init=True warms up the relative step; it needs relative_step=True.")
        eps1, eps2 = V.require_pair(owner, "eps", group["eps"])
        V.require_non_negative(owner, "eps[0]", eps1)
        V.require_non_negative(owner, "eps[1]", eps2)
        if V.require_number(owner, "clip_threshold", group["clip_threshold"]) and not group["clip_threshold"] > 0:
            raise ValueError(f"{owner}: invalid `clip_threshold` {group['clip_threshold']!r}; it must be > 0.")
        if V.require_number(owner, "decay_rate", group["decay_rate"]) and not group["decay_rate"] <= 0:
            raise ValueError(
                f"{owner}: invalid `decay_rate` {group['decay_rate']!r}; it must be <= 0 (the second-moment decay "
                f"is 1 - step**decay_rate)."
            )
        if group["beta1"] is not None:
            V.require_python_number(owner, "beta1", group["beta1"])
            V.require_in_range(owner, "beta1", group["beta1"], 0.0, 1.0)

    def _state_slots(self, group):
        slots = {}
        if group["beta1"] is not None:
            slots["exp_avg"] = zeros_slot()
        slots["exp_avg_sq_row"] = _row_slot()
        slots["exp_avg_sq_col"] = _col_slot()
        slots["exp_avg_sq"] = zeros_slot(lambda p: not _factored(p))
        slots["step"] = scalar_slot(0.0)
        return slots

    def _update(self, group: Dict[str, Any], bucket: Bucket) -> None:
        eps1, eps2 = group["eps"]
        adafactor_kernel(
            bucket.params,
            bucket.grads,
            bucket.state.get("exp_avg"),
            bucket.state["exp_avg_sq"],
            bucket.state["exp_avg_sq_row"],
            bucket.state["exp_avg_sq_col"],
            bucket.scalars["step"],
            lr=group["lr"],
            eps1=eps1,
            eps2=eps2,
            clip_threshold=group["clip_threshold"],
            decay_rate=group["decay_rate"],
            beta1=group["beta1"],
            weight_decay=group["weight_decay"],
            scale_parameter=group["scale_parameter"],
            relative_step=group["relative_step"],
            warmup_init=group["warmup_init"],
        )

    def _translate_group(self, group: Dict[str, Any]) -> None:
        if "beta2_decay" not in group:
            return  # this layout, or Hugging Face's (the same names)
        # torch.optim.Adafactor: the same quantities under other names.
        group["decay_rate"] = group.pop("beta2_decay")
        if "d" in group:
            group["clip_threshold"] = group.pop("d")
        eps1, eps2 = group.get("eps", (None, None))
        own_eps1, own_eps2 = self.defaults["eps"]
        group["eps"] = (own_eps1 if eps1 is None else eps1, own_eps2 if eps2 is None else eps2)

    def _translate_param_state(self, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        state.pop("RMS", None)  # Hugging Face caches the parameter's RMS; it is recomputed each step
        if "row_var" in state:
            state["exp_avg_sq_row"] = state.pop("row_var").squeeze(-1)
        if "col_var" in state:
            state["exp_avg_sq_col"] = state.pop("col_var").squeeze(-2)
        if "variance" in state:
            state["exp_avg_sq"] = state.pop("variance")
