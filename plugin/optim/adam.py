"""Adam and AdamW as cerebras-pytorch defines them (``eps`` 1e-6, powers of the betas as state).

Both keep ``exp_avg``, ``exp_avg_sq`` (and ``max_exp_avg_sq`` with ``amsgrad``) and,
with bias correction, ``beta1_power``/``beta2_power``: ``beta**t`` for the coming step.
Their param groups carry both kinds of weight decay, as the published classes do:
``weight_decay`` (decoupled, AdamW's) and ``l2_regularization_rate`` (added to the
gradient, Adam's). So a state dict saved by one loads into the other.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

import torch

from . import _validation as V
from ._multi_tensor import Bucket, MultiTensorOptimizer, scalar_slot, zeros_slot
from .functional import adam as adam_kernel


class _AdamBase(MultiTensorOptimizer):
    """What Adam and AdamW share: the state, the checks, the kernel and loading torch's ``step``."""

    def __init__(
        self,
        params,
        lr: float,
        betas: Tuple[float, float],
        eps: float,
        weight_decay: float,
        l2_regularization_rate: float,
        correct_bias: bool,
        amsgrad: bool,
    ):
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            l2_regularization_rate=l2_regularization_rate,
            correct_bias=correct_bias,
            amsgrad=amsgrad,
        )
        super().__init__(params, defaults)

    def _validate(self, group: Dict[str, Any]) -> None:
        owner = type(self).__name__
        V.common(owner, group)
        V.require_betas(owner, group["betas"])
        V.require_non_negative(owner, "eps", group["eps"])
        V.require_non_negative(owner, "l2_regularization_rate", group["l2_regularization_rate"])
        V.require_bool(owner, "amsgrad", group["amsgrad"])
        V.require_bool(owner, "correct_bias", group["correct_bias"])

    def _state_slots(self, group):
        slots = {"exp_avg": zeros_slot(), "exp_avg_sq": zeros_slot()}
        if group["amsgrad"]:
            slots["max_exp_avg_sq"] = zeros_slot()
        if group["correct_bias"]:
            beta1, beta2 = group["betas"]
            slots["beta1_power"] = scalar_slot(beta1)
            slots["beta2_power"] = scalar_slot(beta2)
        return slots

    def _update(self, group: Dict[str, Any], bucket: Bucket) -> None:
        beta1, beta2 = group["betas"]
        adam_kernel(
            bucket.params,
            bucket.grads,
            bucket.state["exp_avg"],
            bucket.state["exp_avg_sq"],
            bucket.state.get("max_exp_avg_sq"),
            bucket.scalars.get("beta1_power"),
            bucket.scalars.get("beta2_power"),
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            l2_regularization_rate=group["l2_regularization_rate"],
            correct_bias=group["correct_bias"],
            amsgrad=group["amsgrad"],
        )

    def _translate_group(self, group: Dict[str, Any]) -> None:
        # torch.optim and Hugging Face always correct the bias; only HF's AdamW has the switch.
        group.setdefault("correct_bias", True)
        group.pop("decoupled_weight_decay", None)

    def _translate_param_state(self, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        """torch.optim and Hugging Face count steps; this layout keeps the powers of the betas.

        After ``k`` steps the next step is ``k + 1``, so the powers are ``beta**(k + 1)``.
        (cerebras-pytorch 2.10.0 loads ``beta**k``, an off-by-one that repeats the bias
        correction of the last step taken.)
        """
        if "step" not in state or "beta1_power" in state:
            return
        taken = float(state.pop("step"))
        if group["correct_bias"]:
            beta1, beta2 = group["betas"]
            state["beta1_power"] = torch.as_tensor(beta1, dtype=torch.float64) ** (taken + 1)
            state["beta2_power"] = torch.as_tensor(beta2, dtype=torch.float64) ** (taken + 1)


class Adam(_AdamBase):
    """Adam (Kingma & Ba, 2015) with cerebras-pytorch's defaults and state layout.

    ``weight_decay`` is L2 regularization (added to the gradient), as in torch.optim.Adam;
    it is stored in the param groups as ``l2_regularization_rate`` and the groups'
    ``weight_decay`` (the decoupled decay) is 0. ``eps`` is added to ``sqrt(exp_avg_sq)``
    before the bias correction, so for the same ``eps`` the numbers differ slightly from
    torch.optim.Adam's. A param group's own ``weight_decay`` is its L2 rate
    (cerebras-pytorch 2.10.0 drops it and uses the optimizer's).

    ``load_state_dict`` also accepts torch.optim.Adam's state: ``k`` steps taken become
    the powers of step ``k + 1`` (cerebras-pytorch 2.10.0 sets those of step ``k``, which
    repeats the bias correction of the last step).
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ):
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=0.0,
            l2_regularization_rate=weight_decay,
            correct_bias=True,
            amsgrad=amsgrad,
        )

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        """Add a param group; a ``weight_decay`` given for it is its L2 rate, as for the optimizer."""
        param_group = dict(param_group)
        if "weight_decay" in param_group and "l2_regularization_rate" not in param_group:
            param_group["l2_regularization_rate"] = param_group.pop("weight_decay")
        param_group["weight_decay"] = 0.0
        param_group["correct_bias"] = True
        super().add_param_group(param_group)

    def _translate_group(self, group: Dict[str, Any]) -> None:
        if "l2_regularization_rate" not in group:
            group["l2_regularization_rate"] = group.get("weight_decay", 0.0)
        group["weight_decay"] = 0.0
        group["correct_bias"] = True
        super()._translate_group(group)


class AdamW(_AdamBase):
    """AdamW (Loshchilov & Hutter, 2019) with cerebras-pytorch's defaults and state layout.

    ``weight_decay`` is decoupled: ``p -= lr * weight_decay * p`` beside the Adam update.
    ``correct_bias=False`` drops the bias correction (and the powers of the betas), as
    BERT's optimizer does. ``load_state_dict`` also accepts the state of
    torch.optim.AdamW and of Hugging Face's AdamW (their step counts become the powers of
    the coming step, as for Adam).
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        correct_bias: bool = True,
        amsgrad: bool = False,
    ):
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            l2_regularization_rate=0.0,
            correct_bias=correct_bias,
            amsgrad=amsgrad,
        )

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        """Add a param group (AdamW has no L2 term: its rate is 0)."""
        param_group = dict(param_group)
        param_group["l2_regularization_rate"] = 0.0
        super().add_param_group(param_group)

    def _translate_group(self, group: Dict[str, Any]) -> None:
        group["l2_regularization_rate"] = 0.0
        super()._translate_group(group)
