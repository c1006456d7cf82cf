"""Schedulers stepped exactly once per real optimizer update, on any number of processes.

``Accelerator.prepare`` wraps every scheduler in ``AcceleratedScheduler``, which steps it
``num_processes`` times per call unless ``split_batches=True``: warmup and decay then run
N times too fast on N processes. ``wse.accelerate.prepare`` keeps schedulers away from
it. Each one is stepped by wse right after its optimizer's real update (a step hook on
the optimizer Accelerate wraps, which runs only when gradients were synchronised and the
grad scaler did not skip the update), inside the device step, once per process.

The user gets back a ``PerUpdateScheduler`` in place of each scheduler: the
``scheduler.step()`` an Accelerate loop calls after ``optimizer.step()`` is where the
per-update step happens, and wse has already made it, so the call has nothing left to
do. ``step(epoch)`` and ``step(metrics)`` are refused: they would jump or ignore the
schedule.
"""
from __future__ import annotations

from typing import Any, Dict, List

import torch

from .errors import SchedulerStepError


def _inner_optimizer(optimizer):
    """The torch optimizer inside Accelerate's wrapper (or the optimizer itself)."""
    return getattr(optimizer, "optimizer", optimizer)


def check_scheduler(scheduler, index: int, optimizers: List[torch.optim.Optimizer]) -> None:
    """Refuse a scheduler that cannot be stepped once per update of one of ``optimizers``."""
    name = type(scheduler).__name__
    if type(scheduler).__name__ == "AcceleratedScheduler" or isinstance(scheduler, PerUpdateScheduler):
        raise SchedulerStepError(
            f"argument {index} ({name}) was already prepared: Accelerate's AcceleratedScheduler steps "
            f"its scheduler num_processes times per call. Pass the plain scheduler to "
            f"wse.accelerate.prepare, not to accelerator.prepare, and only once."
        )
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise SchedulerStepError(
            f"argument {index} is a ReduceLROnPlateau scheduler: it needs a monitored metric, which does not "
            f"exist at every optimizer update, so it cannot step once per update. Use a closed-form "
            f"schedule (wse.optim.lr_scheduler, e.g. CosineDecayLR), or step it yourself outside "
            f"wse.accelerate.prepare."
        )
    target = getattr(scheduler, "optimizer", None)
    if target is None or not callable(getattr(scheduler, "step", None)):
        raise SchedulerStepError(
            f"argument {index} ({name}) is not a scheduler (it needs `step()` and an `optimizer`)."
        )
    if not any(_inner_optimizer(target) is optimizer for optimizer in optimizers):
        raise SchedulerStepError(
            f"argument {index} ({name}) schedules a {type(target).__name__} that is not among the optimizers "
            f"passed to this wse.accelerate.prepare call. Pass the scheduler's own optimizer in the same call "
            f"(wse.accelerate.prepare(accelerator, model, optimizer, scheduler)), and create the scheduler "
            f"on the optimizer you prepare."
        )


class PerUpdateScheduler:
    """A scheduler that wse steps once per real optimizer update; returned by ``prepare``.

    Like Accelerate's ``AcceleratedScheduler`` it passes ``state_dict``,
    ``load_state_dict``, ``get_last_lr`` and the scheduler's other attributes through to
    ``.scheduler``; unlike it, ``step()`` never steps: wse has already stepped the
    scheduler right after the update, exactly once, on every process. An Accelerate
    loop's ``scheduler.step()`` can stay where it is.
    """

    # Accelerate's own mark of a prepared object: `accelerator.prepare(...)` and
    # `accelerator.prepare_scheduler(...)` return it as is instead of wrapping it again.
    _is_accelerate_prepared = True

    def __init__(self, scheduler):
        self.scheduler = scheduler

    def step(self, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:
            raise SchedulerStepError(
                f"{type(self.scheduler).__name__}.step() was given arguments {args or ''}{kwargs or ''}: under "
                f"wse.accelerate the scheduler steps once per optimizer update, right after it, and takes "
                f"no epoch or metric. Call scheduler.step() with no arguments (or not at all), and express "
                f"the schedule in optimizer updates."
            )

    def get_last_lr(self):
        return self.scheduler.get_last_lr()

    def state_dict(self) -> Dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state_dict)

    def __getattr__(self, name: str) -> Any:
        if name == "scheduler":  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.scheduler, name)

    def __repr__(self) -> str:
        return f"PerUpdateScheduler({type(self.scheduler).__name__}, last_epoch={getattr(self.scheduler, 'last_epoch', None)})"
