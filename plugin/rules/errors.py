"""The error types and the warning base that every integration's rules raise and warn with.

They live here, outside ``wse.lightning`` and ``wse.accelerate``, so that both
integrations raise the very same classes: ``except wse.lightning.SchedulerStepError``
catches what ``wse.accelerate`` raises, and the reverse. Each integration re-exports
them under its own name and keeps its own warning category, a subclass of
``WSERuleWarning``, so that one filter silences the rules of both.
"""


# The setup refusal (an optimizer would create its state during its first steps) is the
# device's own class, so that ``except wse.device.LazyOptimizerStateError`` and
# ``except wse.rules.LazyOptimizerStateError`` each catch both the refusal and the violation.
from ..device.errors import LazyOptimizerStateError  # noqa: E402,F401


class SchedulerStepError(RuntimeError):
    """A scheduler cannot be, or was not, stepped exactly once per optimizer update."""


class WSERuleWarning(UserWarning):
    """A rule of the static-graph device was broken under ``strict="warn"`` (base of the integrations' categories)."""
