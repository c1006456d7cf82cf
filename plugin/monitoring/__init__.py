"""Which values of an optimizer's param groups to log, and under which names: the core of the LR/WD monitors.

Framework-free (no Lightning, Accelerate or transformers import): the Lightning
callback ``wse.callbacks.LearningRateMonitor``, the Hugging Face Trainer callback in
``wse.callbacks.hf`` and Accelerate loops all read values through ``ParamGroupMonitor``.

* ``ParamGroupMonitor(optimizers, log_momentum=False, log_weight_decay=True, names=None)``:
  ``.read() -> dict[str, float]``, or ``.snapshot()`` now and ``.values()`` later; ``.names``;
  ``.plan(schedulers, total_steps) -> Plan`` (the values the schedulers' closed forms will write).
* ``write_plan_csv(plan, directory)`` and ``plan_figure(plan)`` render a plan.
"""
from .naming import tags_label, unwrap_optimizer
from .plan import Plan, planned_values
from .plan_output import PLAN_FILENAME, plan_figure, write_plan_csv
from .reading import ParamGroupMonitor, Snapshot

__all__ = [
    "PLAN_FILENAME",
    "ParamGroupMonitor",
    "Plan",
    "Snapshot",
    "plan_figure",
    "planned_values",
    "tags_label",
    "unwrap_optimizer",
    "write_plan_csv",
]
