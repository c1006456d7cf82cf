"""Closed-form schedules that move from an initial value by a fixed law of the step."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Tuple

from .base import (
    Schedule,
    require_finite,
    require_increasing,
    require_non_negative,
    require_positive,
)


@dataclass(frozen=True)
class Constant(Schedule):
    """``value`` at every step."""

    value: float

    def __post_init__(self):
        require_finite("Constant", value=self.value)

    def evaluate(self, t, m):
        return m.const(t, self.value)


@dataclass(frozen=True)
class Polynomial(Schedule):
    """``end + (initial - end) * (1 - t / total_steps) ** power``, then ``end``.

    With ``cycle=True`` the horizon is stretched to the next multiple of
    ``total_steps`` instead of holding ``end`` (the Keras ``PolynomialDecay`` rule), so
    the value climbs back and decays again in every period.
    """

    initial: float
    end: float
    total_steps: float
    power: float = 1.0
    cycle: bool = False

    def __post_init__(self):
        require_finite("Polynomial", initial=self.initial, end=self.end, power=self.power)
        require_positive("Polynomial", total_steps=self.total_steps)

    def evaluate(self, t, m):
        if self.cycle:
            periods = m.maximum(m.ceil(t / self.total_steps), 1.0)
            fraction = t / (periods * self.total_steps)
            return (self.initial - self.end) * m.pow(1.0 - fraction, self.power) + self.end
        fraction = m.minimum(t / self.total_steps, 1.0)
        decayed = (self.initial - self.end) * m.pow(1.0 - fraction, self.power) + self.end
        return m.where(t >= self.total_steps, m.const(t, self.end), decayed)


@dataclass(frozen=True)
class Exponential(Schedule):
    """``initial * decay_rate ** (t / total_steps)``, floored to whole periods if ``staircase``."""

    initial: float
    total_steps: float
    decay_rate: float
    staircase: bool = False

    def __post_init__(self):
        require_finite("Exponential", initial=self.initial)
        require_positive("Exponential", total_steps=self.total_steps)
        require_non_negative("Exponential", decay_rate=self.decay_rate)

    def evaluate(self, t, m):
        exponent = t / self.total_steps
        if self.staircase:
            exponent = m.floor(exponent)
        return self.initial * m.pow(self.decay_rate, exponent)


@dataclass(frozen=True)
class InverseTimeDecay(Schedule):
    """``initial / (1 + decay_rate * t ** step_exponent / total_steps)`` (Keras InverseTimeDecay)."""

    initial: float
    step_exponent: float
    total_steps: float
    decay_rate: float
    staircase: bool = False

    def __post_init__(self):
        require_finite("InverseTimeDecay", initial=self.initial, step_exponent=self.step_exponent)
        require_positive("InverseTimeDecay", total_steps=self.total_steps)
        require_non_negative("InverseTimeDecay", decay_rate=self.decay_rate)

    def evaluate(self, t, m):
        alpha = m.pow(t, self.step_exponent) / self.total_steps
        if self.staircase:
            alpha = m.floor(alpha)
        return self.initial / (1.0 + self.decay_rate * alpha)


@dataclass(frozen=True)
class InverseSquareRoot(Schedule):
    """``initial * scale / sqrt(max(t, warmup_steps))``."""

    initial: float
    scale: float = 1.0
    warmup_steps: float = 1.0

    def __post_init__(self):
        require_finite("InverseSquareRoot", initial=self.initial, scale=self.scale)
        require_positive("InverseSquareRoot", warmup_steps=self.warmup_steps)

    def evaluate(self, t, m):
        return self.initial * self.scale / m.sqrt(m.maximum(t, self.warmup_steps))


@dataclass(frozen=True)
class CosineDecay(Schedule):
    """Half a cosine from ``initial`` to ``end`` over ``total_steps``, then ``end``."""

    initial: float
    end: float
    total_steps: float

    def __post_init__(self):
        require_finite("CosineDecay", initial=self.initial, end=self.end)
        require_positive("CosineDecay", total_steps=self.total_steps)

    def evaluate(self, t, m):
        progress = m.minimum(t, self.total_steps) / self.total_steps
        return self.end + (self.initial - self.end) * 0.5 * (1.0 + m.cos(m.pi * progress))


@dataclass(frozen=True)
class CosineAnnealing(Schedule):
    """``eta_min + (initial - eta_min) * (1 + cos(pi * t / T_max)) / 2``, periodic past ``T_max``.

    This is the closed form of torch's ``CosineAnnealingLR`` when nothing else touches
    the value.
    """

    initial: float
    T_max: float
    eta_min: float = 0.0

    def __post_init__(self):
        require_finite("CosineAnnealing", initial=self.initial, eta_min=self.eta_min)
        require_positive("CosineAnnealing", T_max=self.T_max)

    def evaluate(self, t, m):
        return self.eta_min + (self.initial - self.eta_min) * 0.5 * (1.0 + m.cos(m.pi * t / self.T_max))


@dataclass(frozen=True)
class MultiStep(Schedule):
    """``initial * gamma ** (number of milestones reached)``."""

    initial: float
    gamma: float
    milestones: Tuple[int, ...]

    def __post_init__(self):
        require_finite("MultiStep", initial=self.initial, gamma=self.gamma)
        object.__setattr__(self, "milestones", tuple(self.milestones))
        require_increasing("MultiStep", "milestones", self.milestones)

    def evaluate(self, t, m):
        return self.initial * m.pow(self.gamma, m.count_reached(t, self.milestones))


@dataclass(frozen=True)
class Step(Schedule):
    """``initial * gamma ** floor(t / step_size)``."""

    initial: float
    step_size: float
    gamma: float

    def __post_init__(self):
        require_finite("Step", initial=self.initial, gamma=self.gamma)
        require_positive("Step", step_size=self.step_size)

    def evaluate(self, t, m):
        return self.initial * m.pow(self.gamma, m.floor(t / self.step_size))


@dataclass(frozen=True)
class Multiplicative(Schedule):
    """``initial * coefficient ** t``: the closed form of multiplying by a constant each step."""

    initial: float
    coefficient: float

    def __post_init__(self):
        require_finite("Multiplicative", initial=self.initial, coefficient=self.coefficient)

    def evaluate(self, t, m):
        return self.initial * m.pow(self.coefficient, t)


@dataclass(frozen=True)
class Lambda(Schedule):
    """``initial * f1(t) * f2(t) * ...`` for user functions of the step.

    Each function receives the step as the schedule receives it (a float on the host
    path, a tensor on the tensor path) and must use operations valid for both if the
    schedule is to run in a compiled graph.
    """

    initial: float
    factors: Tuple[Callable, ...]

    def __post_init__(self):
        require_finite("Lambda", initial=self.initial)
        object.__setattr__(self, "factors", tuple(self.factors))
        for factor in self.factors:
            if not callable(factor):
                raise TypeError(f"Lambda: every factor must be callable, got {factor!r}.")

    def evaluate(self, t, m):
        value = m.const(t, self.initial)
        for factor in self.factors:
            value = value * factor(t)
        return value
