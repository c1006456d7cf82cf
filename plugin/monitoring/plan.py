"""The planned values of a run: each scheduler's closed form, evaluated over the run's optimizer steps.

Every ``wse.optim`` scheduler and the compat faces (``wse.compat.pytorch_accelerated``'s
closed-form LR schedulers, ``wse.compat.megatron.OptimizerParamScheduler``) know the
value they will write at any step, so the whole curve of a run is known before it
starts. ``planned_values`` gives, for one scheduler, the value each targeted param group
holds at optimizer steps ``0 .. n-1``, assuming the scheduler steps once after every
optimizer step (as ``strategy="wse"`` makes every scheduler do, and as Lightning does
with ``interval="step"``). Schedulers without a known closed form (``torch.optim``'s,
or subclasses that override how values are computed) have no plan.

Each library has its own convention for the value at step 0, kept here:

* ``wse.optim`` (as ``cerebras.pytorch.optim``) and Megatron-Core: construction writes
  the value of step 0, each ``step()`` the next one: step ``i`` uses ``f(i)``;
* pytorch-accelerated: ``step()`` after update ``i`` writes the value "after ``i``
  updates", so update ``i`` uses ``f(i - 1)``, and update 0 ``f(0)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch

#: At most this many steps are evaluated and rendered; longer runs are sampled evenly (ends included).
MAX_PLAN_POINTS = 4096

# (param-group index, param-group key) -> values at the requested steps.
GroupValues = Dict[Tuple[int, str], torch.Tensor]


@dataclass
class Plan:
    """Planned values by series name, at the optimizer steps ``steps``."""

    steps: List[int]
    series: Dict[str, List[float]] = field(default_factory=dict)
    #: Schedulers that have no known closed form (their type names), left out of the plan.
    unplanned: List[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.series)


def plan_steps(total_steps: int, max_points: int = MAX_PLAN_POINTS) -> List[int]:
    """The steps at which a run of ``total_steps`` optimizer steps is planned: all, or an even sample."""
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"A plan needs a whole, positive number of steps, got {total_steps!r}.")
    if total_steps <= max_points:
        return list(range(total_steps))
    return sorted({round(i * (total_steps - 1) / (max_points - 1)) for i in range(max_points)})


def _evaluate(schedule, steps: torch.Tensor) -> torch.Tensor:
    return torch.broadcast_to(torch.as_tensor(schedule(steps), dtype=torch.float64), steps.shape)


def planned_values(scheduler, steps: Sequence[int]) -> Optional[GroupValues]:
    """``{(group index, key): values at steps}`` for ``scheduler``, or ``None`` if its closed form is unknown."""
    at = torch.tensor(list(steps), dtype=torch.float64)
    from ..optim._binding import Scheduler

    if isinstance(scheduler, Scheduler):
        if not type(scheduler)._fast_path:  # computes its values its own way
            return None
        values = _evaluate(scheduler.schedule, at)
        key = scheduler.param_group_key
        return {(g, key): values * scale for g, scale in enumerate(scheduler._group_scales()) if scale is not None}

    from ..compat.megatron import OptimizerParamScheduler

    if isinstance(scheduler, OptimizerParamScheduler):
        out: GroupValues = {}
        for g, group in enumerate(scheduler.optimizer.param_groups):
            out[(g, "lr")] = _evaluate(scheduler.lr_schedule(group), at)
            out[(g, "weight_decay")] = _evaluate(scheduler.wd_schedule(group), at) * group.get("wd_mult", 1.0)
        return out

    from ..compat.pytorch_accelerated import _ClosedFormLrScheduler

    if isinstance(scheduler, _ClosedFormLrScheduler):
        previous = torch.clamp(at - 1, min=0)
        key = scheduler.param_group_field
        return {(g, key): _evaluate(schedule, previous) for g, schedule in enumerate(scheduler.schedules)}
    return None
