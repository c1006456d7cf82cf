"""Previewing a scheduler config: build it on a one-group toy optimizer and read its values at every step.

The config is built exactly as in training (same checks, same errors), on an optimizer
with one param group holding ``lr`` and ``weight_decay``. The values at all
steps are then read from the scheduler's closed form, evaluated once on a float64 tensor
of steps: it is the function the scheduler steps through, so the numbers are those that
stepping would write into the param group, at a fraction of the cost on long schedules.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set

import torch

from ._binding import Scheduler
from ._config_errors import SchedulerConfigError
from ._config_source import load_config
from ._generic import (
    ChainedScheduler,
    CosineAnnealingWarmRestartsScheduler,
    CosineDecayScheduler,
    CyclicScheduler,
    MultiStepScheduler,
    PiecewiseConstantScheduler,
    PolynomialScheduler,
    ScalePerParamScheduler,
    SequentialScheduler,
)
from .configure_scheduler import build_entry, keyed_entries

DEFAULT_STEPS = 1000
# Steps evaluated per tensor op: bounds the memory of the temporaries on long schedules.
EVALUATION_CHUNK = 65_536
# Steps shown past the end of the schedule, as a fraction of its length.
TAIL_FRACTION = 0.1


@dataclass
class Preview:
    """The schedulers built from a config and the steps to preview them over."""

    steps: int
    schedulers: Dict[str, Scheduler]  # param-group key ("lr", "weight_decay") -> scheduler
    marks: Dict[str, List[int]] = field(default_factory=dict)  # key -> milestones and ends of decays

    @property
    def all_marks(self) -> List[int]:
        return sorted({m for marks in self.marks.values() for m in marks})

    def values(self, key: str) -> Optional[List[float]]:
        """The value written into the param group at each step, or None if ``key`` is not scheduled."""
        scheduler = self.schedulers.get(key)
        if scheduler is None:
            return None
        return schedule_values(scheduler, self.steps)


def schedule_values(scheduler: Scheduler, steps: int) -> List[float]:
    """The values ``scheduler`` writes into the (single) param group at steps ``0 .. steps-1``."""
    scale = scheduler._group_scales()[0]
    if scale is None:
        raise SchedulerConfigError(
            type(scheduler).__name__, "its `param_group_tags` do not select the preview's param group."
        )
    values: List[float] = []
    with _one_thread():
        for first in range(0, steps, EVALUATION_CHUNK):
            at = torch.arange(first, min(first + EVALUATION_CHUNK, steps), dtype=torch.float64)
            chunk = torch.as_tensor(scheduler.schedule(at), dtype=torch.float64)
            values += (torch.broadcast_to(chunk, at.shape) * scale).tolist()
    return values


@contextmanager
def _one_thread():
    """Run torch ops on the calling thread only, then restore the thread count.

    The ops here are a few cheap elementwise passes; splitting them over a thread pool
    costs more than it saves, and far more (milliseconds per op) when the other cores
    are busy and the pool has to wait for them.
    """
    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _tags_in(config: Any) -> Set[str]:
    """Every tag named by a ``param_group_tags`` anywhere in the config."""
    found: Set[str] = set()
    if isinstance(config, Mapping):
        for key, value in config.items():
            if key == "param_group_tags":
                # Anything else than a tag or a list of tags is left for the scheduler to reject.
                values = [value] if isinstance(value, str) else value if isinstance(value, (list, tuple)) else []
                found.update(v for v in values if isinstance(v, str))
            else:
                found |= _tags_in(value)
    elif isinstance(config, (list, tuple)):
        for item in config:
            found |= _tags_in(item)
    return found


class PreviewOptimizer(torch.optim.Optimizer):
    """An optimizer that is never stepped: one param group for the schedulers to write into.

    ``torch.optim.Optimizer.__init__`` is not run: its ``add_param_group`` imports
    ``torch._dynamo`` (seconds), which a preview has no use for.
    """

    def __init__(self, group: dict):
        self.defaults = {}
        self.state = {}
        self.param_groups = [group]

    def step(self, closure=None):
        raise RuntimeError("The preview's optimizer only holds values for the schedulers; it cannot step.")


def toy_optimizer(tags: Set[str]) -> torch.optim.Optimizer:
    """One zero parameter in one param group with ``lr`` and ``weight_decay``, carrying ``tags`` (if any)."""
    group = {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.0, "weight_decay": 0.0}
    if tags:
        group["tags"] = sorted(tags)
    return PreviewOptimizer(group)


def preview_config(config: Any, steps: Optional[int] = None) -> Preview:
    """Build the scheduler(s) of ``config`` (data, YAML/JSON text or a path) for a preview.

    ``steps`` defaults to the schedule's length plus 10 % (the longest when LR and WD are
    both given), or 1000 steps when the config has no length.
    """
    config = load_config(config)
    entries = keyed_entries(config)
    optimizer = toy_optimizer(_tags_in(config))
    schedulers: Dict[str, Scheduler] = {}
    for key, (written, entry) in entries.items():
        scheduler = build_entry(optimizer, key, written, entry)
        schedulers[scheduler.param_group_key] = scheduler
    if steps is None:
        lengths = [n for n in (schedule_length(s) for s in schedulers.values()) if n]
        steps = math.ceil(max(lengths) * (1 + TAIL_FRACTION)) if lengths else DEFAULT_STEPS
    marks = {key: sorted({m for m in schedule_marks(s) if 0 < m < steps}) for key, s in schedulers.items()}
    return Preview(steps=steps, schedulers=schedulers, marks=marks)


def schedule_length(scheduler: Scheduler) -> Optional[int]:
    """The number of steps in which the scheduler does something worth seeing, if known."""
    if isinstance(scheduler, SequentialScheduler):
        tail = schedule_length(scheduler._schedulers[-1]) or 0
        return (scheduler._milestones[-1] if scheduler._milestones else 0) + tail or None
    if isinstance(scheduler, ChainedScheduler):
        lengths = [n for n in map(schedule_length, scheduler._schedulers) if n]
        return max(lengths) if lengths else None
    if isinstance(scheduler, ScalePerParamScheduler):
        return schedule_length(scheduler._scheduler_nested)
    if isinstance(scheduler, MultiStepScheduler):
        return scheduler.milestones[-1] if scheduler.milestones else None
    if isinstance(scheduler, CyclicScheduler):
        return 2 * (scheduler.step_size_up + scheduler.step_size_down)
    if isinstance(scheduler, CosineAnnealingWarmRestartsScheduler):
        return int(scheduler.T_0 * (1 + scheduler.T_mult + scheduler.T_mult**2))
    for name in ("total_iters", "total_steps", "T_max"):
        value = getattr(scheduler, name, None)
        if value:
            return int(math.ceil(value))
    return None


def schedule_marks(scheduler: Scheduler, start: int = 0) -> List[int]:
    """Steps where a part of the schedule begins or ends (milestones, ends of decays)."""
    if isinstance(scheduler, SequentialScheduler):
        found = []
        for child, child_start in zip(scheduler._schedulers, [0] + list(scheduler._milestones)):
            found.append(start + child_start)
            found += schedule_marks(child, start + child_start)
        return found
    if isinstance(scheduler, ChainedScheduler):
        return [m for child in scheduler._schedulers for m in schedule_marks(child, start)]
    if isinstance(scheduler, ScalePerParamScheduler):
        return schedule_marks(scheduler._scheduler_nested, start)
    if isinstance(scheduler, MultiStepScheduler):
        return [start + m for m in scheduler.milestones]
    ends = isinstance(scheduler, CosineDecayScheduler) or (
        isinstance(scheduler, PolynomialScheduler) and not scheduler.cycle
    )
    if ends:
        return [start + int(scheduler.total_iters)]
    return []


def table_steps(steps: int, marks: List[int], rows: int = 16, most: int = 20) -> List[int]:
    """About ``rows`` steps to tabulate: the first, the last, the marks, and evenly spaced fill."""
    must = sorted({0, steps - 1} | {m for m in marks if 0 <= m < steps})
    if len(must) > most:
        must = sorted({must[round(i * (len(must) - 1) / (most - 1))] for i in range(most)})
    chosen = set(must)
    spacing = max(1, steps // (2 * rows))
    for i in range(rows):
        if len(chosen) >= min(rows, steps):
            break
        candidate = round(i * (steps - 1) / (rows - 1))
        if all(abs(candidate - c) >= spacing for c in chosen):
            chosen.add(candidate)
    return sorted(chosen)


def describe(scheduler: Scheduler) -> str:
    """The scheduler's class with its children, e.g. ``SequentialLR(LinearLR, CosineDecayLR)``."""
    name = type(scheduler).__name__
    if isinstance(scheduler, (SequentialScheduler, ChainedScheduler)) and not isinstance(scheduler, PiecewiseConstantScheduler):
        return f"{name}({', '.join(describe(c) for c in scheduler._schedulers)})"
    if isinstance(scheduler, ScalePerParamScheduler):
        return f"{name}({describe(scheduler._scheduler_nested)})"
    return name
