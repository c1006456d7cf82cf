"""The WSD decay-period protocol: where each checkpoint period stops being stable and ends.

A scheduler that decays before checkpoints implements one method, ``decay_periods()``,
returning ``DecayPeriod(period_start, period_end, decay_steps, pre_decay_step)`` tuples
counted in optimizer updates. Every WSD face of wse implements it:

* ``wse.compat.pytorch_accelerated.WSDLrScheduler`` (the periods of ``get_decay_info()``);
* ``wse.compat.megatron.OptimizerParamScheduler`` with ``lr_decay_style="WSD"`` (one
  period, stable until ``wsd_decay_steps`` remain before ``lr_decay_steps``);
* a ``wse.optim`` scheduler whose schedule is ``wse.schedules.WarmupStableDecay``.

Other schedulers return no periods or lack the method; checkpoint tools refuse them.
"""
from __future__ import annotations

import math
from typing import List, Mapping, Optional, Protocol, Sequence, Tuple, runtime_checkable

from ..schedules.warmup_stable_decay import DecayPeriod

__all__ = ["DecayPeriod", "DecayPeriodSource", "SUPPORTED_SCHEDULERS", "find_decay_periods", "check_periods"]

SUPPORTED_SCHEDULERS = (
    "wse.compat.pytorch_accelerated.WSDLrScheduler",
    "wse.compat.megatron.OptimizerParamScheduler(lr_decay_style='WSD')",
    "a wse.optim scheduler bound to wse.schedules.WarmupStableDecay",
)


@runtime_checkable
class DecayPeriodSource(Protocol):
    """Anything that can say where its learning rate decays before each checkpoint."""

    def decay_periods(self) -> Sequence[DecayPeriod]:
        """The checkpoint periods, in optimizer updates, in order."""


def _periods_of(scheduler) -> List[DecayPeriod]:
    if not isinstance(scheduler, DecayPeriodSource):
        return []
    periods = []
    for period in scheduler.decay_periods():
        # pytorch-accelerated's get_decay_info() dicts are accepted as well as the tuples.
        fields = period if isinstance(period, Mapping) else dict(zip(DecayPeriod._fields, period))
        try:
            periods.append(DecayPeriod(**{name: int(fields[name]) for name in DecayPeriod._fields}))
        except (KeyError, TypeError, ValueError):
            raise TypeError(
                f"{type(scheduler).__name__}.decay_periods() returned {period!r}; expected "
                f"DecayPeriod(period_start, period_end, decay_steps, pre_decay_step) of whole steps."
            ) from None
    return periods


def find_decay_periods(schedulers: Sequence, owner: str = "WSDCheckpointCallback") -> Tuple[object, List[DecayPeriod]]:
    """The one scheduler among ``schedulers`` that has decay periods, and its checked periods.

    Raises a ``TypeError`` naming the supported schedulers when none has periods, and a
    ``ValueError`` when several do (their checkpoints would be ambiguous).
    """
    found = [(s, p) for s in schedulers for p in [_periods_of(s)] if p]
    if not found:
        given = ", ".join(type(s).__name__ for s in schedulers) or "no scheduler"
        raise TypeError(
            f"{owner} needs a warmup-stable-decay scheduler that reports its decay periods; got {given}. "
            f"Supported: {'; '.join(SUPPORTED_SCHEDULERS)}; or any scheduler with a `decay_periods()` "
            f"method returning wse.schedules.DecayPeriod tuples. Return it from configure_optimizers."
        )
    if len(found) > 1:
        names = ", ".join(type(s).__name__ for s, _ in found)
        raise ValueError(
            f"{owner}: several schedulers report decay periods ({names}); keep one WSD scheduler so that "
            f"the checkpoint steps are unambiguous."
        )
    scheduler, periods = found[0]
    check_periods(periods, owner=owner)
    return scheduler, periods


def check_periods(periods: Sequence[DecayPeriod], max_steps: Optional[float] = None, owner: str = "WSDCheckpointCallback") -> None:
    """Periods must be consecutive, each stable part and decay inside its period, all within ``max_steps``."""
    start = 0
    for period in periods:
        s, end, decay, pre = period
        if s != start or not s < end or decay < 0 or pre != end - decay or pre < s:
            raise ValueError(
                f"{owner}: inconsistent decay period {period}: periods must follow each other from step 0, "
                f"with period_start <= pre_decay_step = period_end - decay_steps."
            )
        start = end
    if max_steps is not None and math.isfinite(max_steps) and max_steps >= 0 and periods[-1].period_end > max_steps:
        beyond = [p.period_end for p in periods if p.period_end > max_steps]
        raise ValueError(
            f"{owner}: the scheduler checkpoints at step(s) {beyond}, beyond the run's {int(max_steps)} "
            f"steps, so those checkpoints would never be written. Build the scheduler for the run's length "
            f"(e.g. WSDLrScheduler(total_steps={int(max_steps)})) or raise the Trainer's max_steps to "
            f"{periods[-1].period_end}."
        )
