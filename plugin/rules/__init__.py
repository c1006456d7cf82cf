"""The rules of the static-graph device that every integration enforces at setup, written once.

Lightning's ``WSEStrategy`` and ``wse.accelerate.prepare`` are thin adapters over this
package and over ``wse.optim.preinitialize`` (optimizer state allocated before the first
step): the same strictness (``"raise"``/``"warn"``/``"off"``), the same error types, the
same switch of schedules to in-graph tensor values. Nothing here imports Lightning or
Accelerate: the integrations depend on the rules, never the reverse.
"""
from .errors import LazyOptimizerStateError, SchedulerStepError, WSERuleWarning
from .in_graph import schedule_in_graph
from .strictness import STRICT_MODES, enforce, validate_strict

__all__ = [
    "LazyOptimizerStateError",
    "SchedulerStepError",
    "WSERuleWarning",
    "STRICT_MODES",
    "enforce",
    "validate_strict",
    "schedule_in_graph",
]
