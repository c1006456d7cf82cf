"""Per-iteration scheduling: every scheduler steps exactly once per optimizer step, inside it.

On a static-graph device the schedule is part of the compiled step, so it advances with
the optimizer, not with epochs, and its update is captured with the optimizer's. Four
parts:

* ``make_per_iteration`` rewrites the scheduler configs that ``configure_optimizers``
  produced to ``interval="step", frequency=1`` (saying so once, in a warning, if it
  changed anything) and refuses ``ReduceLROnPlateau``, which cannot step without a
  metric.
* ``SchedulerSteps`` steps the schedulers of an optimizer right after that optimizer's
  step, through ``LightningModule.lr_scheduler_step`` (so an override is honoured), and
  checks that nothing else stepped them in between and that the hook stepped each once:
  a schedule can never drift from the optimizer's count.
* ``schedule_in_graph`` switches the schedulers that can to tensor values, so that the
  schedule is computed inside the step, as on the device.
* ``take_over_scheduler_steps`` keeps Lightning's training loop from stepping those
  schedulers again. In automatic optimization Lightning steps them after
  ``optimizer_step`` has returned, outside the training step the device captures; the
  strategy steps them inside it instead (``ReduceLROnPlateau`` configs, which can only
  be left to Lightning under ``strict="warn"``/``"off"``, keep Lightning's own stepping).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from lightning.pytorch.utilities.types import LRSchedulerConfig
from torch.optim.lr_scheduler import ReduceLROnPlateau

from .errors import SchedulerStepError, WSEStrategyWarning
from .options import enforce


def _is_plateau(config: LRSchedulerConfig) -> bool:
    return config.reduce_on_plateau or isinstance(config.scheduler, ReduceLROnPlateau)


def _describe(config: LRSchedulerConfig) -> str:
    return config.name or type(config.scheduler).__name__


def make_per_iteration(configs: List[LRSchedulerConfig], strict: str) -> List[LRSchedulerConfig]:
    """Set every config to step once per optimizer step; return those the strategy schedules.

    ``ReduceLROnPlateau`` is refused (``strict="raise"``) or left to Lightning as configured.
    """
    scheduled, changed = [], []
    for config in configs:
        if _is_plateau(config):
            enforce(
                strict,
                SchedulerStepError,
                f"{_describe(config)} is a ReduceLROnPlateau scheduler: it needs a monitored metric, which "
                f"does not exist at every optimizer step, so it cannot step once per iteration as strategy "
                f"'wse' requires. Use a closed-form schedule (wse.optim.lr_scheduler, e.g. CosineDecayLR), "
                f"or pass WSEStrategy(strict='warn') to leave it to Lightning as configured.",
            )
            continue
        if config.interval != "step" or config.frequency != 1:
            changed.append(f"{_describe(config)} (interval={config.interval!r}, frequency={config.frequency})")
            config.interval, config.frequency = "step", 1
        scheduled.append(config)
    if changed:
        rank_zero_warn(
            f"Strategy 'wse' steps every scheduler once per optimizer step; changed to interval='step', "
            f"frequency=1: {', '.join(changed)}. Express the schedule in optimizer steps.",
            category=WSEStrategyWarning,
        )
    return scheduled


class SchedulerSteps:
    """Steps each optimizer's schedulers right after its step, and checks their count.

    Args:
        configs: the configs ``make_per_iteration`` returned.
        step_scheduler: how to step one scheduler (``LightningModule.lr_scheduler_step``,
            called with no metric).
        strict: what to do when a scheduler was stepped other than once per optimizer step.
    """

    def __init__(
        self,
        configs: List[LRSchedulerConfig],
        step_scheduler: Callable[[object, Optional[float]], None],
        strict: str,
    ):
        self._step_scheduler = step_scheduler
        self._strict = strict
        self._by_optimizer: Dict[int, list] = {}
        for config in configs:
            self._by_optimizer.setdefault(id(config.scheduler.optimizer), []).append(config.scheduler)
        # The step count of each scheduler right after its last step, where it has one.
        self._counts: Dict[int, int] = {}
        self._reported: set = set()

    @property
    def schedulers(self) -> list:
        return [scheduler for schedulers in self._by_optimizer.values() for scheduler in schedulers]

    def schedulers_of(self, optimizer) -> list:
        return self._by_optimizer.get(id(optimizer), [])

    def step(self, optimizer) -> None:
        """Step ``optimizer``'s schedulers once each (call right after ``optimizer`` stepped)."""
        schedulers = self._by_optimizer.get(id(optimizer))
        if not schedulers:
            return
        self.before_step(optimizer)
        for scheduler in schedulers:
            self._step_scheduler(scheduler, None)
        self.after_step(optimizer)

    def before_step(self, optimizer) -> None:
        """Check that nothing stepped ``optimizer``'s schedulers since their last step."""
        for scheduler in self._by_optimizer.get(id(optimizer), ()):
            count, previous = getattr(scheduler, "last_epoch", None), self._counts.get(id(scheduler))
            if isinstance(count, int) and previous is not None and count != previous:
                self._report(
                    scheduler,
                    optimizer,
                    f"stepped {count - previous} extra time(s) between two optimizer steps",
                    "remove your own `scheduler.step()` calls (also from `optimizer_step` and callbacks).",
                )
            if isinstance(count, int):
                self._counts[id(scheduler)] = count

    def after_step(self, optimizer) -> None:
        """Check that each of ``optimizer``'s schedulers advanced by one, and remember its count."""
        for scheduler in self._by_optimizer.get(id(optimizer), ()):
            count, previous = getattr(scheduler, "last_epoch", None), self._counts.get(id(scheduler))
            if isinstance(count, int) and previous is not None and count - previous != 1:
                times = "once" if count - previous == 1 else f"{count - previous} times"
                self._report(
                    scheduler,
                    optimizer,
                    f"stepped {times} between two optimizer steps by `lr_scheduler_step`",
                    "do not override `LightningModule.lr_scheduler_step` to skip or repeat steps.",
                )
            if isinstance(count, int):
                self._counts[id(scheduler)] = count

    def _report(self, scheduler, optimizer, what: str, fix: str) -> None:
        if id(scheduler) in self._reported:
            return
        self._reported.add(id(scheduler))
        enforce(
            self._strict,
            SchedulerStepError,
            f"{type(scheduler).__name__} of {type(optimizer).__name__} was {what}; strategy 'wse' steps "
            f"every scheduler exactly once per optimizer step, right after it, inside the training step: "
            f"{fix}",
        )


def take_over_scheduler_steps(trainer) -> Callable[[], None]:
    """Keep Lightning's loop from stepping the non-plateau schedulers; return the undo.

    Lightning's training epoch loop steps schedulers through its ``update_lr_schedulers``
    after each batch (``update_plateau_schedulers=False``: the others) and after
    validation (``True``: ``ReduceLROnPlateau``). The first kind is the strategy's now;
    the second is left to Lightning. If a future Lightning steps them some other way,
    ``SchedulerSteps`` sees a scheduler stepped twice and says so.
    """
    loop = trainer.fit_loop.epoch_loop
    lightning_update = getattr(loop, "update_lr_schedulers", None)
    if not callable(lightning_update):
        raise RuntimeError(
            f"Strategy 'wse' steps the schedulers inside the training step and needs to stop Lightning's "
            f"own stepping, but this Lightning's training loop ({type(loop).__name__}) has no "
            f"`update_lr_schedulers`. Use a Lightning version with it (2.x)."
        )

    def update_lr_schedulers(interval: str, update_plateau_schedulers: bool) -> None:
        if update_plateau_schedulers:
            lightning_update(interval, update_plateau_schedulers=update_plateau_schedulers)

    loop.update_lr_schedulers = update_lr_schedulers

    def undo() -> None:
        loop.__dict__.pop("update_lr_schedulers", None)

    return undo


def schedule_in_graph(schedulers: list, device: torch.device) -> Tuple[List[str], List[str]]:
    """Switch every scheduler that can to tensor values; return the names of (switched, host-side).

    On the device the schedule is part of the step's graph: its value must be a tensor
    updated in place, not a Python number written into the param groups (which a
    compiled step would read as a constant). The ``wse.optim`` schedulers can be switched
    (``enable_tensor_values``); others, such as ``torch.optim.lr_scheduler``'s, stay
    host-side, and the device reports them. The tensors are float64 where the device has
    it, so the values read by the optimizer are the closed form's, as host values are.
    """
    dtype = torch.float32 if device.type == "mps" else torch.float64
    switched, host_side = [], []
    for scheduler in schedulers:
        name = type(scheduler).__name__
        enable = getattr(scheduler, "enable_tensor_values", None)
        if getattr(scheduler, "uses_tensor_values", False):
            switched.append(name)
        elif callable(enable):
            enable(device=device, dtype=dtype)
            switched.append(name)
        else:
            host_side.append(name)
    return switched, host_side
