"""Per-iteration scheduling: every scheduler steps exactly once per optimizer step.

On a static-graph device the schedule is part of the compiled step, so it advances with
the optimizer, not with epochs. Two parts:

* ``make_per_iteration`` rewrites the scheduler configs that ``configure_optimizers``
  produced to ``interval="step", frequency=1`` (saying so once, in a warning, if it
  changed anything) and refuses ``ReduceLROnPlateau``, which cannot step without a
  metric. In automatic optimization Lightning's loop then steps every scheduler once per
  optimizer step, after it, and not on the batches that only accumulate gradients.
* ``SchedulerSteps`` runs after every optimizer step. In manual optimization, where
  Lightning steps nothing, it steps the schedulers of the optimizer that stepped (through
  ``LightningModule.lr_scheduler_step``). In both modes it checks that nothing else
  stepped them in between, so a schedule can never drift from the optimizer's count.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

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
    """After each optimizer step: step its schedulers (manual optimization) and check their count.

    Args:
        configs: the configs ``make_per_iteration`` returned.
        automatic: whether Lightning's loop steps the schedulers (automatic optimization).
        step_scheduler: how to step one scheduler (``LightningModule.lr_scheduler_step``
            with no metric), used in manual optimization.
        strict: what to do when a scheduler was stepped other than once per optimizer step.
    """

    def __init__(
        self,
        configs: List[LRSchedulerConfig],
        automatic: bool,
        step_scheduler: Callable[[object, Optional[float]], None],
        strict: str,
    ):
        self._automatic = automatic
        self._step_scheduler = step_scheduler
        self._strict = strict
        self._by_optimizer: Dict[int, list] = {}
        for config in configs:
            self._by_optimizer.setdefault(id(config.scheduler.optimizer), []).append(config.scheduler)
        # The step count of each scheduler at the last optimizer step, where it has one.
        self._counts: Dict[int, int] = {}
        self._reported: set = set()

    def after_optimizer_step(self, optimizer) -> None:
        # Lightning steps a scheduler after the optimizer step, so since the previous
        # optimizer step it advanced by one in automatic optimization, by none in manual.
        expected = 1 if self._automatic else 0
        for scheduler in self._by_optimizer.get(id(optimizer), ()):
            count = getattr(scheduler, "last_epoch", None)
            previous = self._counts.get(id(scheduler))
            if isinstance(count, int) and previous is not None and count - previous != expected:
                self._report(scheduler, optimizer, count - previous)
            if not self._automatic:
                self._step_scheduler(scheduler, None)
                count = getattr(scheduler, "last_epoch", None)
            if isinstance(count, int):
                self._counts[id(scheduler)] = count

    def _report(self, scheduler, optimizer, steps: int) -> None:
        if id(scheduler) in self._reported:
            return
        self._reported.add(id(scheduler))
        if self._automatic:
            times = f"{steps} times" if steps != 1 else "once"
            fix = (
                "In automatic optimization Lightning steps it after each optimizer step: do not step it "
                "yourself, and do not override `lr_scheduler_step` or `optimizer_step` to skip steps."
            )
            between = f"stepped {times} between two optimizer steps"
        else:
            between = f"stepped {steps} extra time(s) between two optimizer steps"
            fix = (
                "In manual optimization strategy 'wse' steps it after each `optimizer.step()`: remove your "
                "own `scheduler.step()` calls."
            )
        enforce(
            self._strict,
            SchedulerStepError,
            f"{type(scheduler).__name__} of {type(optimizer).__name__} was {between}; strategy 'wse' "
            f"steps every scheduler exactly once per optimizer step. {fix}",
        )
