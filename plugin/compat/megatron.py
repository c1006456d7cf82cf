"""Megatron-Core's ``OptimizerParamScheduler`` on wse's closed-form schedules.

Same constructor, methods (``get_lr(param_group)``, ``get_wd()``, ``step(increment)``,
``state_dict()``, ``load_state_dict()``) and state-dict keys as
``megatron.core.optimizer_param_scheduler.OptimizerParamScheduler``. The learning rate
of a param group is ``wse.schedules.WarmupAnneal`` and its weight decay
``wse.schedules.Ramp`` (or a constant), built from the scheduler's settings and the
group's own ``max_lr``/``min_lr``/``start_wd``/``end_wd`` if it has them; the weight
decay written is that value times the group's ``wd_mult``. Works on any optimizer with
``param_groups`` (a ``torch.optim.Optimizer`` or a Megatron optimizer).

The scheduler is a ``torch.optim.lr_scheduler.LRScheduler`` whose ``step()`` defaults to
an increment of 1, so Lightning and Accelerate step it as any torch scheduler; with
``enable_tensor_values`` it writes 0-d tensors updated in place (in the graph, under
``strategy="wse"``). ``get_canonical_lr_for_logging`` is Megatron-Core's helper of the
same name.
"""
from __future__ import annotations

import logging
import math
from numbers import Number
from typing import Optional

import torch

from .. import schedules as S
from ..schedules._backend import HOST
from ..schedules.anneal import RAMP_SHAPES
from ..schedules.base import require_choice
from ..schedules.warmup_anneal import DECAY_STYLES, WSD_DECAY_STYLES
from ..optim._host_only import host_only, keep_out_of_graphs
from ._torch_api import TensorValues, TorchSchedulerAPI, resolve_device

__all__ = ["OptimizerParamScheduler", "get_canonical_lr_for_logging"]

logger = logging.getLogger(__name__)

WD_INCR_STYLES = ("constant",) + RAMP_SHAPES

# Settings the schedules are built from; setting one rebuilds them on next use.
_SCHEDULE_INPUTS = frozenset(
    {"init_lr", "max_lr", "min_lr", "lr_warmup_steps", "lr_decay_steps", "lr_decay_style", "wsd_decay_steps",
     "lr_wsd_decay_style", "start_wd", "end_wd", "wd_incr_steps", "wd_incr_style"}
)

# Each setting's key in the state dict, then older names it was saved under, newest first.
_STATE_NAMES = {
    "max_lr": ("max_lr", "start_lr"),
    "min_lr": ("min_lr",),
    "lr_warmup_steps": ("lr_warmup_steps", "warmup_steps", "warmup_iter"),
    "lr_decay_steps": ("lr_decay_steps", "decay_steps", "end_iter"),
    "lr_decay_style": ("lr_decay_style", "decay_style"),
    "num_steps": ("num_steps", "num_iters"),
}
_WD_STATE_KEYS = ("start_wd", "end_wd", "wd_incr_steps", "wd_incr_style")
# How each setting is named in the log, as Megatron-Core names it.
_DESCRIPTIONS = {
    "max_lr": "learning rate",
    "min_lr": "minimum learning rate",
    "lr_warmup_steps": "warmup iterations",
    "lr_decay_steps": "total number of iterations",
    "lr_decay_style": "learning rate decay style",
    "start_wd": "start weight decay",
    "end_wd": "end weight decay",
    "wd_incr_steps": "total number of weight decay iterations",
    "wd_incr_style": "weight decay incr style",
}


def _require_number(owner: str, low: float = -math.inf, **values) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, Number) or not math.isfinite(value):
            raise TypeError(f"{owner}: `{name}` must be a finite number, got {value!r}.")
        if value < low:
            raise ValueError(f"{owner}: `{name}` must be >= {low}, got {value!r}.")


def _require_steps(owner: str, **values) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, Number) or value != int(value):
            raise TypeError(f"{owner}: `{name}` must be a whole number of steps, got {value!r}.")
        if value < 0:
            raise ValueError(f"{owner}: `{name}` must be >= 0, got {value!r}.")


def _check_settings(s: dict) -> None:
    """Validate a full set of scheduler settings (at construction and after loading a state)."""
    owner = "OptimizerParamScheduler"
    _require_number(owner, init_lr=s["init_lr"], max_lr=s["max_lr"], min_lr=s["min_lr"])
    _require_number(owner, low=0.0, min_lr=s["min_lr"], init_lr=s["init_lr"])
    if s["max_lr"] < s["min_lr"]:
        raise ValueError(f"{owner}: `max_lr` ({s['max_lr']}) must be >= `min_lr` ({s['min_lr']}).")
    if s["init_lr"] > s["max_lr"]:
        raise ValueError(f"{owner}: `init_lr` ({s['init_lr']}) must be <= `max_lr` ({s['max_lr']}); the warmup rises to max_lr.")
    _require_steps(owner, lr_warmup_steps=s["lr_warmup_steps"], lr_decay_steps=s["lr_decay_steps"],
                   wd_incr_steps=s["wd_incr_steps"])
    if s["lr_decay_steps"] <= 0:
        raise ValueError(f"{owner}: `lr_decay_steps` must be > 0, got {s['lr_decay_steps']!r}.")
    if s["lr_warmup_steps"] >= s["lr_decay_steps"]:
        raise ValueError(
            f"{owner}: `lr_warmup_steps` ({s['lr_warmup_steps']}) must be smaller than `lr_decay_steps` "
            f"({s['lr_decay_steps']}); both count from step 0."
        )
    require_choice(owner, "lr_decay_style", s["lr_decay_style"], DECAY_STYLES)
    if s["lr_decay_style"] == "WSD":
        if s["wsd_decay_steps"] is None:
            raise ValueError(f"{owner}: lr_decay_style 'WSD' needs `wsd_decay_steps` (the length of the final anneal).")
        _require_steps(owner, wsd_decay_steps=s["wsd_decay_steps"])
        if s["wsd_decay_steps"] > s["lr_decay_steps"]:
            raise ValueError(
                f"{owner}: `wsd_decay_steps` ({s['wsd_decay_steps']}) must be <= `lr_decay_steps` "
                f"({s['lr_decay_steps']}); the anneal ends at lr_decay_steps."
            )
        require_choice(owner, "lr_wsd_decay_style", s["lr_wsd_decay_style"], WSD_DECAY_STYLES)
    _require_number(owner, low=0.0, start_wd=s["start_wd"], end_wd=s["end_wd"])
    if s["end_wd"] < s["start_wd"]:
        raise ValueError(f"{owner}: `end_wd` ({s['end_wd']}) must be >= `start_wd` ({s['start_wd']}).")
    require_choice(owner, "wd_incr_style", s["wd_incr_style"], WD_INCR_STYLES)
    if s["wd_incr_style"] == "constant" and s["start_wd"] != s["end_wd"]:
        raise ValueError(
            f"{owner}: wd_incr_style 'constant' needs `start_wd` == `end_wd`, got {s['start_wd']} and "
            f"{s['end_wd']}; use 'linear' or 'cosine' to move between them."
        )


def get_canonical_lr_for_logging(param_groups: list) -> Optional[float]:
    """The learning rate to log: that of the first param group marked ``default_config=True``.

    As in Megatron-Core: the groups with the default configuration share one schedule,
    so the first of them stands for all (an empty group included, since the scheduler
    writes every group's lr). None when no group is marked. The value is the group's
    ``lr`` as it is (a tensor when the scheduler writes tensor values).
    """
    for param_group in param_groups:
        if param_group.get("default_config", False):
            return param_group.get("lr")
    return None


class OptimizerParamScheduler(TorchSchedulerAPI):
    """Anneals the learning rate and increments the weight decay of every param group.

    Learning rate at step ``n`` (``wse.schedules.WarmupAnneal``): linear from
    ``init_lr`` to ``max_lr`` while ``n <= lr_warmup_steps``; then by
    ``lr_decay_style`` — ``linear``, ``cosine``, ``inverse-square-root``, ``constant``
    (``max_lr`` for ever) or ``WSD`` (``max_lr`` until the last ``wsd_decay_steps``
    steps, annealed by ``lr_wsd_decay_style``: linear, cosine, exponential or
    minus_sqrt); ``min_lr`` once ``n > lr_decay_steps``.

    Weight decay: ``start_wd`` to ``end_wd`` over ``wd_incr_steps`` by
    ``wd_incr_style`` (constant, linear or cosine), then ``end_wd``; each group gets it
    times its ``wd_mult``. A group's ``max_lr``, ``min_lr``, ``start_wd`` and ``end_wd``
    replace the scheduler's for that group.

    Loading a state: with ``override_opt_param_scheduler`` the constructor's settings
    win; otherwise the saved ones are used, and with
    ``use_checkpoint_opt_param_scheduler=False`` they must equal the constructor's.

    Differences from Megatron-Core, all where it asserts or contradicts itself: bad
    arguments raise at construction with a message (unknown styles name the closest
    valid one) instead of an assertion or a failure at the first step that needs them;
    ``wd_incr_steps=0`` gives ``end_wd`` instead of dividing by zero; ``load_state_dict``
    sets the step count to the saved one (Megatron-Core adds it to the current count,
    which is the same for a fresh scheduler) and writes the param groups after all
    saved settings, weight decay included, are in place.
    """

    def __init__(
        self,
        optimizer,
        init_lr: float,
        max_lr: float,
        min_lr: float,
        lr_warmup_steps: int,
        lr_decay_steps: int,
        lr_decay_style: str,
        start_wd: float,
        end_wd: float,
        wd_incr_steps: int,
        wd_incr_style: str,
        use_checkpoint_opt_param_scheduler: Optional[bool] = True,
        override_opt_param_scheduler: Optional[bool] = False,
        wsd_decay_steps: Optional[int] = None,
        lr_wsd_decay_style: Optional[str] = None,
    ) -> None:
        groups = getattr(optimizer, "param_groups", None)
        if not isinstance(groups, (list, tuple)):
            raise TypeError(
                f"OptimizerParamScheduler needs an optimizer with `param_groups`, got {type(optimizer).__name__}."
            )
        if override_opt_param_scheduler and use_checkpoint_opt_param_scheduler:
            raise ValueError(
                "OptimizerParamScheduler: `override_opt_param_scheduler` and `use_checkpoint_opt_param_scheduler` "
                "are both set; choose one (pass use_checkpoint_opt_param_scheduler=False to override)."
            )
        settings = dict(
            init_lr=init_lr, max_lr=max_lr, min_lr=min_lr, lr_warmup_steps=lr_warmup_steps,
            lr_decay_steps=lr_decay_steps, lr_decay_style=lr_decay_style, wsd_decay_steps=wsd_decay_steps,
            lr_wsd_decay_style=lr_wsd_decay_style, start_wd=start_wd, end_wd=end_wd, wd_incr_steps=wd_incr_steps,
            wd_incr_style=wd_incr_style,
        )
        _check_settings(settings)
        settings["max_lr"] = float(max_lr)
        self.optimizer = optimizer
        self._lr_schedules = {}
        self._wd_schedules = {}
        for name, value in settings.items():
            setattr(self, name, value)
        self.override_opt_param_scheduler = override_opt_param_scheduler
        self.use_checkpoint_opt_param_scheduler = use_checkpoint_opt_param_scheduler
        self.num_steps = 0
        self._tensor_values = None
        self._step_count = 0  # 1 after the construction's step(0), as torch counts
        self.step(0)
        logger.info("> learning rate decay style: %s", self.lr_decay_style)

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)
        if name in _SCHEDULE_INPUTS:
            self.__dict__.get("_lr_schedules", {}).clear()
            self.__dict__.get("_wd_schedules", {}).clear()

    # -- the schedules ------------------------------------------------------------------

    def lr_schedule(self, param_group: dict) -> S.WarmupAnneal:
        """The learning rate of ``param_group`` as a function of the step."""
        max_lr = param_group.get("max_lr", self.max_lr)
        min_lr = param_group.get("min_lr", self.min_lr)
        schedule = self._lr_schedules.get((max_lr, min_lr))
        if schedule is None:
            if not 0.0 <= min_lr <= max_lr:
                raise ValueError(
                    f"OptimizerParamScheduler: a param group's learning-rate range must satisfy "
                    f"0 <= min_lr <= max_lr, got min_lr={min_lr}, max_lr={max_lr}."
                )
            schedule = S.WarmupAnneal(
                self.init_lr, max_lr, min_lr, self.lr_warmup_steps, self.lr_decay_steps, self.lr_decay_style,
                self.wsd_decay_steps, self.lr_wsd_decay_style,
            )
            self._lr_schedules[(max_lr, min_lr)] = schedule
        return schedule

    def wd_schedule(self, param_group: Optional[dict] = None) -> S.Schedule:
        """The weight decay of ``param_group`` (before its ``wd_mult``) as a function of the step."""
        group = param_group if param_group is not None else {}
        start_wd = group.get("start_wd", self.start_wd)
        end_wd = group.get("end_wd", self.end_wd)
        schedule = self._wd_schedules.get((start_wd, end_wd))
        if schedule is None:
            if not 0.0 <= start_wd <= end_wd:
                raise ValueError(
                    f"OptimizerParamScheduler: a param group's weight-decay range must satisfy "
                    f"0 <= start_wd <= end_wd, got start_wd={start_wd}, end_wd={end_wd}."
                )
            if self.wd_incr_style == "constant":
                if start_wd != end_wd:
                    raise ValueError(
                        f"OptimizerParamScheduler: wd_incr_style 'constant' needs start_wd == end_wd in every "
                        f"param group, got {start_wd} and {end_wd}."
                    )
                schedule = S.Constant(end_wd)
            elif self.wd_incr_steps == 0:
                schedule = S.Constant(end_wd)
            else:
                schedule = S.Ramp(start_wd, end_wd, self.wd_incr_steps, self.wd_incr_style)
            self._wd_schedules[(start_wd, end_wd)] = schedule
        return schedule

    # -- Megatron-Core's interface ------------------------------------------------------

    def get_wd(self, param_group: Optional[dict] = None) -> float:
        """The weight decay at the current step, for ``param_group`` (before ``wd_mult``) or the defaults."""
        return self.wd_schedule(param_group)(self.num_steps)

    def get_lr(self, param_group: dict) -> float:
        """The learning rate of ``param_group`` at the current step."""
        return self.lr_schedule(param_group)(self.num_steps)

    def decay_periods(self) -> list:
        """The WSD decay-period protocol: one period for ``lr_decay_style="WSD"``, none otherwise.

        The period runs from step 0 to ``lr_decay_steps`` and stays stable until
        ``wsd_decay_steps`` remain (``wse.schedules.DecayPeriod``).
        """
        from ..schedules.warmup_stable_decay import DecayPeriod

        if self.lr_decay_style != "WSD":
            return []
        end, decay = int(self.lr_decay_steps), int(self.wsd_decay_steps)
        return [DecayPeriod(0, end, decay, end - decay)]

    def step(self, increment: int = 1) -> None:
        """Advance ``increment`` steps and write every group's lr and weight decay.

        Megatron-Core's ``step`` requires the increment; it defaults to 1 here so that
        callers of torch's scheduler API (Lightning, Accelerate) step it with ``step()``.
        """
        if type(increment) is not int and (
            isinstance(increment, bool) or not isinstance(increment, Number) or increment != int(increment)
        ):
            raise TypeError(f"OptimizerParamScheduler.step: `increment` must be a whole number of steps, got {increment!r}.")
        if self.num_steps + increment < 0:
            raise ValueError(
                f"OptimizerParamScheduler.step: increment {increment} would take the step count "
                f"{self.num_steps} below 0."
            )
        tensors = self._tensor_values
        if tensors is None:
            self.num_steps += int(increment)
            self._step_count += 1
        else:
            # The Python counters advance outside a compiled step; the step tensor inside it.
            self._count_steps_on_host(int(increment))
            tensors.step.add_(int(increment))
        self._write_param_groups()

    @host_only
    def _count_steps_on_host(self, increment: int) -> None:
        self.num_steps += increment
        self._step_count += 1

    @property
    def last_epoch(self) -> int:
        """The step count (``num_steps``), under the name torch's schedulers give it."""
        return self.num_steps

    def _write_param_groups(self) -> None:
        # Compute everything before writing anything, so that a bad group leaves all untouched.
        groups = self.optimizer.param_groups
        tensors = self._tensor_values
        t = float(self.num_steps) if tensors is None else tensors.step_value()
        # Groups usually share their settings, hence their schedules: evaluate each once.
        evaluated = {}

        def value_of(schedule):
            value = evaluated.get(id(schedule))
            if value is None:
                value = evaluated[id(schedule)] = schedule.evaluate(t, HOST) if tensors is None else schedule(t)
            return value

        values = [
            (value_of(self.lr_schedule(group)), value_of(self.wd_schedule(group)) * group.get("wd_mult", 1.0))
            for group in groups
        ]
        if tensors is not None:
            for index, (group, (lr, weight_decay)) in enumerate(zip(groups, values)):
                tensors.write(group, index, "lr", lr)
                tensors.write(group, index, "weight_decay", weight_decay)
            return
        for group, (lr, weight_decay) in zip(groups, values):
            # As Megatron-Core does: a tensor lr (a compiled optimizer's) is written in place.
            if isinstance(group.get("lr"), torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
            group["weight_decay"] = weight_decay

    # -- tensor values ------------------------------------------------------------------

    def enable_tensor_values(self, device=None, dtype: torch.dtype = torch.float32) -> "OptimizerParamScheduler":
        """Write 0-d tensors updated in place instead of Python floats, from now on.

        Every group's ``lr`` and ``weight_decay`` become tensors on ``device`` (the first
        parameter's by default) holding their current values, and every ``step()``
        computes the next ones there from a step tensor, with no host synchronisation: a
        compiled optimizer step that reads them is compiled once. The protocol of the
        ``wse.optim`` schedulers, which the Lightning strategy and ``wse.device`` switch on.
        """
        keep_out_of_graphs(type(self))
        tensors = TensorValues(self.num_steps, ("lr", "weight_decay"), resolve_device(self.optimizer, device), dtype)
        tensors.adopt(self.optimizer.param_groups)
        self._tensor_values = tensors
        return self

    def disable_tensor_values(self) -> "OptimizerParamScheduler":
        """Write Python floats again, from now on; the current values are written as numbers."""
        if self._tensor_values is not None:
            self._tensor_values = None
            for group in self.optimizer.param_groups:
                group.pop("lr", None)
            self._write_param_groups()
        return self

    @property
    def uses_tensor_values(self) -> bool:
        return self._tensor_values is not None

    def state_dict(self) -> dict:
        """The settings and step count, under Megatron-Core's keys."""
        return {
            "max_lr": self.max_lr,
            "lr_warmup_steps": self.lr_warmup_steps,
            "num_steps": self.num_steps,
            "lr_decay_style": self.lr_decay_style,
            "lr_decay_steps": self.lr_decay_steps,
            "min_lr": self.min_lr,
            "start_wd": self.start_wd,
            "end_wd": self.end_wd,
            "wd_incr_style": self.wd_incr_style,
            "wd_incr_steps": self.wd_incr_steps,
        }

    def _check_and_set(self, name: str, saved):
        """The value of setting ``name`` after loading ``saved`` (see the class docstring)."""
        current = getattr(self, name)
        description = _DESCRIPTIONS[name]
        if self.override_opt_param_scheduler:
            logger.info(" > overriding %s value to %s", description, current)
            return current
        if not self.use_checkpoint_opt_param_scheduler and current != saved:
            raise ValueError(
                f"OptimizerParamScheduler: the checkpoint's {description} ({name}={saved!r}) differs from "
                f"this scheduler's ({current!r}). Construct the scheduler with the checkpoint's value, or pass "
                f"use_checkpoint_opt_param_scheduler=True to take it, or override_opt_param_scheduler=True "
                f"(with use_checkpoint_opt_param_scheduler=False) to keep yours."
            )
        logger.info(" > using checkpoint value %s for %s", saved, description)
        return saved

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore settings and step count saved by this class or by Megatron-Core, old key names included."""

        def saved(name):
            for key in _STATE_NAMES[name]:
                if key in state_dict:
                    return state_dict[key]
            raise KeyError(
                f"OptimizerParamScheduler.load_state_dict: the state has no {name} (looked for "
                f"{list(_STATE_NAMES[name])}; keys present: {sorted(state_dict)})."
            )

        settings = {name: getattr(self, name) for name in _SCHEDULE_INPUTS}
        for name in ("max_lr", "min_lr", "lr_warmup_steps", "lr_decay_steps", "lr_decay_style"):
            settings[name] = self._check_and_set(name, saved(name))
        num_steps = saved("num_steps")
        if "start_wd" in state_dict:
            for name in _WD_STATE_KEYS:
                if name not in state_dict:
                    raise KeyError(f"OptimizerParamScheduler.load_state_dict: the state has start_wd but no {name}.")
                settings[name] = self._check_and_set(name, state_dict[name])
        _check_settings(settings)
        _require_steps("OptimizerParamScheduler.load_state_dict", num_steps=num_steps)
        for name, value in settings.items():
            setattr(self, name, value)
        self.num_steps = int(num_steps)
        if self._tensor_values is not None:
            self._tensor_values.step.fill_(self.num_steps)
        self._write_param_groups()
