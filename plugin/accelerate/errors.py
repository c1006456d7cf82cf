"""The errors and the warning category of the Accelerate integration's rules.

``LazyOptimizerStateError`` and ``SchedulerStepError`` are ``wse.rules``' own classes,
shared with ``wse.lightning``: one ``except`` catches the refusal of either integration.
``PrepareError`` and ``LaunchError`` are Accelerate's alone.
"""
from ..rules import LazyOptimizerStateError, SchedulerStepError, WSERuleWarning

__all__ = ["LazyOptimizerStateError", "SchedulerStepError", "PrepareError", "LaunchError", "WSEAccelerateWarning"]


class PrepareError(TypeError):
    """``wse.accelerate.prepare`` was given an object it cannot place, or in the wrong order."""


class LaunchError(RuntimeError):
    """Several processes were launched but the ``Accelerator`` is not distributed."""


class WSEAccelerateWarning(WSERuleWarning):
    """A rule was broken under ``strict="warn"``."""
