"""The Schedule type: an immutable value that maps a step to a number."""
from __future__ import annotations

import difflib
import math
from ._backend import as_step


class Schedule:
    """A pure function of the step, written once for both arithmetics.

    Call it with a Python number to get a float (the cheap eager path) or with a tensor
    to get a tensor of the same shape, computed without host synchronisation. Subclasses
    are frozen dataclasses that implement ``evaluate(t, m)``, where ``t`` is the step as
    a float or floating tensor and ``m`` is the arithmetic (see ``_backend``).
    Combinators call ``evaluate`` of their children directly, so dispatch happens once.
    """

    def __call__(self, step):
        t, m = as_step(step)
        return self.evaluate(t, m)

    def evaluate(self, t, m):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement evaluate(t, m)")

    def values(self, steps):
        """The schedule on each step of an iterable, as floats (for previews and tests)."""
        return [self(step) for step in steps]


def require_finite(owner: str, **values) -> None:
    """Raise if any value is not a finite real number."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(
                f"{owner}: `{name}` must be a number, got {value!r} ({type(value).__name__})."
            )
        if not math.isfinite(value):
            raise ValueError(f"{owner}: `{name}` must be finite, got {value!r}.")


def require_non_negative(owner: str, **values) -> None:
    require_finite(owner, **values)
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{owner}: `{name}` must be >= 0, got {value!r}.")


def require_positive(owner: str, **values) -> None:
    require_finite(owner, **values)
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{owner}: `{name}` must be > 0, got {value!r}.")


def require_positive_int(owner: str, **values) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise TypeError(f"{owner}: `{name}` must be a whole number of steps, got {value!r}.")
        if value <= 0:
            raise ValueError(f"{owner}: `{name}` must be > 0 steps, got {value!r}.")


def require_increasing(owner: str, name: str, milestones) -> None:
    """Milestones are whole steps, non-negative and strictly increasing."""
    for value in milestones:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise TypeError(f"{owner}: `{name}` must be whole numbers of steps, got {list(milestones)!r}.")
        if value < 0:
            raise ValueError(f"{owner}: `{name}` must be >= 0, got {list(milestones)!r}.")
    for earlier, later in zip(milestones, milestones[1:]):
        if later <= earlier:
            raise ValueError(
                f"{owner}: `{name}` must be strictly increasing, got {list(milestones)!r} "
                f"({later} does not come after {earlier})."
            )


def require_choice(owner: str, name: str, value, choices) -> None:
    """Raise if ``value`` is not one of ``choices``, naming the closest valid one."""
    if value in choices:
        return
    by_lower = {str(choice).lower(): choice for choice in choices}
    close = difflib.get_close_matches(str(value).lower(), list(by_lower), n=1, cutoff=0.0)
    hint = f" Did you mean {by_lower[close[0]]!r}?" if close else ""
    raise ValueError(f"{owner}: `{name}` must be one of {list(choices)}, got {value!r}.{hint}")
