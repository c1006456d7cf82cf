"""Combinators: schedules built from schedules, joined at boundaries or multiplied."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from .base import Schedule, require_finite, require_increasing
from .decay import Constant


@dataclass(frozen=True)
class Sequential(Schedule):
    """``schedules[k]`` from ``milestones[k-1]`` on, each restarted at its own step 0.

    ``milestones`` are absolute steps: at step ``t`` with ``milestones[k-1] <= t <
    milestones[k]`` the value is ``schedules[k](t - milestones[k-1])``.
    """

    schedules: Tuple[Schedule, ...]
    milestones: Tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "schedules", tuple(self.schedules))
        object.__setattr__(self, "milestones", tuple(self.milestones))
        if not self.schedules:
            raise ValueError("Sequential: needs at least one schedule.")
        if len(self.milestones) != len(self.schedules) - 1:
            raise ValueError(
                f"Sequential: expected one milestone fewer than schedules, got "
                f"{len(self.schedules)} schedules and {len(self.milestones)} milestones."
            )
        require_increasing("Sequential", "milestones", self.milestones)

    def evaluate(self, t, m):
        schedules, starts = self.schedules, (0,) + self.milestones
        return m.piecewise(t, self.milestones, lambda k, t: schedules[k].evaluate(t - starts[k], m))


def piecewise_constant(values, milestones) -> Sequential:
    """``values[k]`` between ``milestones[k-1]`` and ``milestones[k]``."""
    values = tuple(values)
    if len(values) != len(milestones) + 1:
        raise ValueError(
            f"piecewise_constant: expected exactly one more value than milestones, got "
            f"{len(values)} values and {len(milestones)} milestones."
        )
    return Sequential(tuple(Constant(v) for v in values), tuple(milestones))


@dataclass(frozen=True)
class Product(Schedule):
    """The product of several schedules at the same step."""

    factors: Tuple[Schedule, ...]

    def __post_init__(self):
        object.__setattr__(self, "factors", tuple(self.factors))
        if not self.factors:
            raise ValueError("Product: needs at least one schedule.")

    def evaluate(self, t, m):
        value = self.factors[0].evaluate(t, m)
        for factor in self.factors[1:]:
            value = value * factor.evaluate(t, m)
        return value


@dataclass(frozen=True)
class Scale(Schedule):
    """A schedule multiplied by a constant."""

    schedule: Schedule
    factor: float

    def __post_init__(self):
        require_finite("Scale", factor=self.factor)

    def evaluate(self, t, m):
        return self.schedule.evaluate(t, m) * self.factor


@dataclass(frozen=True)
class Shift(Schedule):
    """A schedule whose step 0 is ``offset`` steps later: ``schedule(t - offset)``."""

    schedule: Schedule
    offset: float

    def evaluate(self, t, m):
        return self.schedule.evaluate(t - self.offset, m)
