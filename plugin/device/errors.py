"""The typed violations of the static-graph contract, one exception type per kind.

Each is what a wafer-scale engine would reject, late and expensively; here it is raised
(``check="strict"``) or warned once per kind (``check="warn"``) at the step that broke
the contract, with a message that says what changed, where in the user's code, and
what to change.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from .location import Location

if TYPE_CHECKING:
    from .libraries import LibraryCall


class StaticGraphViolation(RuntimeError):
    """A step broke the contract of the step captured first (base of the five kinds)."""

    #: Short name of the kind, used in warnings and in the device's report.
    kind = "violation"

    def __init__(
        self, message: str, *, step: int, location: Optional[Location], library: Optional["LibraryCall"] = None
    ):
        self.step = step
        #: The user's line that ran it (None when no frame of the stack is the user's).
        self.location = location
        #: The line of torch.optim, torchmetrics, torch.nn or Lightning that did it, when one
        #: of them did (the user's line only called it), with the advice for that library.
        self.library = library
        super().__init__(message)


class LazyOptimizerStateError(StaticGraphViolation, TypeError):
    """Optimizer state was created, replaced or reshaped after the first step, or would be.

    One class for both moments the rule is broken: the violation seen while a step runs
    (``step`` is the step) and the integrations' refusal at setup, before any step runs
    (``step`` is None). ``wse.rules``, ``wse.lightning`` and ``wse.accelerate`` export this
    very class, so one ``except`` catches both; it is also a ``TypeError``, as the setup
    refusal always was.
    """

    kind = "lazy optimizer state"

    def __init__(
        self, message: str, *, step: Optional[int] = None, location: Optional[Location] = None,
        library: Optional["LibraryCall"] = None,
    ):
        super().__init__(message, step=step, location=location, library=library)


class HostSyncError(StaticGraphViolation):
    """The step read a device value on the host, or produced a data-dependent shape."""

    kind = "host sync"


class ShapeChangeError(StaticGraphViolation):
    """An input of the step has a shape, dtype or device other than the captured one."""

    kind = "shape change"


class GraphChangeError(StaticGraphViolation):
    """The step ran a different sequence of operations than the captured one."""

    kind = "graph change"


class HostHyperparameterError(StaticGraphViolation):
    """A hyperparameter in the param groups changed as a Python number between steps."""

    kind = "host hyperparameter"


VIOLATION_TYPES = (
    LazyOptimizerStateError,
    HostSyncError,
    ShapeChangeError,
    GraphChangeError,
    HostHyperparameterError,
)


class StaticGraphWarning(UserWarning):
    """A violation reported by ``check="warn"``: the first of its kind, training goes on.

    ``kind``, ``step``, ``location`` and ``library`` are those of the violation;
    ``error_type`` is the exception ``check="strict"`` would have raised.
    """

    def __init__(self, violation: StaticGraphViolation):
        self.kind = violation.kind
        self.step = violation.step
        self.location = violation.location
        self.library = violation.library
        self.error_type = type(violation)
        super().__init__(
            f"{type(violation).__name__}: {violation}\n(check='warn': training goes on; later {violation.kind} "
            f"violations are counted in the device's report, not warned again)"
        )
