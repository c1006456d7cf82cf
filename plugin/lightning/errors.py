"""The errors and the warning category of the Lightning strategy's rules.

The errors are ``wse.rules``' own classes, shared with ``wse.accelerate``: catching
``wse.lightning.LazyOptimizerStateError`` catches the Accelerate integration's too.
The warning category is the strategy's, a ``WSERuleWarning``.
"""
from ..rules import LazyOptimizerStateError, SchedulerStepError, WSERuleWarning

__all__ = ["LazyOptimizerStateError", "SchedulerStepError", "WSEStrategyWarning"]


class WSEStrategyWarning(WSERuleWarning):
    """A rule of the strategy was broken under ``strict="warn"``, or a setting was changed."""
