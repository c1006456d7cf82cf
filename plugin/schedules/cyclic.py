"""Closed-form schedules that repeat or rise and fall: cyclic, one-cycle, warm restarts."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .base import Schedule, require_finite, require_positive

CYCLIC_MODES = ("triangular", "triangular2", "exp_range")
ANNEAL_STRATEGIES = ("cos", "linear")


@dataclass(frozen=True)
class Cyclic(Schedule):
    """Cyclical values between ``base`` and ``peak`` (Smith 2017; torch ``CyclicLR``).

    ``triangular`` keeps the amplitude, ``triangular2`` halves it every cycle and
    ``exp_range`` scales it by ``gamma ** t``.
    """

    base: float
    peak: float
    step_size_up: float = 2000
    step_size_down: float | None = None
    mode: str = "triangular"
    gamma: float = 1.0

    def __post_init__(self):
        require_finite("Cyclic", base=self.base, peak=self.peak, gamma=self.gamma)
        require_positive("Cyclic", step_size_up=self.step_size_up)
        if self.step_size_down is None:
            object.__setattr__(self, "step_size_down", self.step_size_up)
        require_positive("Cyclic", step_size_down=self.step_size_down)
        if self.mode not in CYCLIC_MODES:
            raise ValueError(f"Cyclic: `mode` must be one of {CYCLIC_MODES}, got {self.mode!r}.")

    def evaluate(self, t, m):
        period = self.step_size_up + self.step_size_down
        rising = self.step_size_up / period
        cycle = m.floor(1.0 + t / period)
        x = 1.0 + t / period - cycle
        height = (self.peak - self.base) * m.where(x <= rising, x / rising, (x - 1.0) / (rising - 1.0))
        if self.mode == "triangular2":
            height = height / m.pow(2.0, cycle - 1.0)
        elif self.mode == "exp_range":
            height = height * m.pow(self.gamma, t)
        return self.base + height


@dataclass(frozen=True)
class OneCycle(Schedule):
    """The 1cycle policy: ``initial`` up to ``peak``, then down to ``initial / final_div_factor``.

    Phase boundaries are those of torch's ``OneCycleLR``; past ``total_steps`` the last
    phase's formula continues.
    """

    initial: float
    peak: float
    total_steps: float = 1000
    pct_start: float = 0.3
    final_div_factor: float = 1e4
    three_phase: bool = False
    anneal_strategy: str = "cos"

    def __post_init__(self):
        require_finite("OneCycle", initial=self.initial, peak=self.peak)
        require_positive("OneCycle", total_steps=self.total_steps, final_div_factor=self.final_div_factor)
        if not 0 < self.pct_start < 1:
            raise ValueError(f"OneCycle: `pct_start` must be in (0, 1), got {self.pct_start!r}.")
        if self.pct_start * self.total_steps - 1 <= 0:
            raise ValueError(
                f"OneCycle: the rising phase is empty (pct_start * total_steps - 1 = "
                f"{self.pct_start * self.total_steps - 1:g}); raise `total_steps` or `pct_start`."
            )
        if self.anneal_strategy not in ANNEAL_STRATEGIES:
            raise ValueError(
                f"OneCycle: `anneal_strategy` must be one of {ANNEAL_STRATEGIES}, got {self.anneal_strategy!r}."
            )
        phases = self._phase_table()
        object.__setattr__(self, "_phases", phases)
        # A phase takes over strictly after the previous one's last step.
        object.__setattr__(self, "_boundaries", tuple(phase[1] for phase in phases[:-1]))

    def _phase_table(self):
        """(first step, last step, start value, end value) of each phase."""
        floor = self.initial / self.final_div_factor
        rise_end = self.pct_start * self.total_steps - 1
        if self.three_phase:
            fall_end = 2 * self.pct_start * self.total_steps - 2
            return (
                (0.0, rise_end, self.initial, self.peak),
                (rise_end, fall_end, self.peak, self.initial),
                (fall_end, self.total_steps - 1, self.initial, floor),
            )
        return ((0.0, rise_end, self.initial, self.peak), (rise_end, self.total_steps - 1, self.peak, floor))

    def _anneal(self, phase, t, m):
        first_step, last_step, start, end = self._phases[phase]
        pct = (t - first_step) / (last_step - first_step)
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (m.cos(m.pi * pct) + 1.0)
        return start + pct * (end - start)

    def evaluate(self, t, m):
        return m.piecewise(t, self._boundaries, lambda k, t: self._anneal(k, t, m), after=True)


@dataclass(frozen=True)
class CosineWarmRestarts(Schedule):
    """SGDR: cosine from ``initial`` to ``eta_min`` over ``T_i`` steps, then restart.

    ``T_i`` starts at ``T_0`` and is multiplied by the integer ``T_mult`` at each
    restart; ``T_cur`` counts the steps since the last restart (torch's
    ``CosineAnnealingWarmRestarts``).
    """

    initial: float
    T_0: float
    T_mult: float = 1
    eta_min: float = 0.0

    def __post_init__(self):
        require_finite("CosineWarmRestarts", initial=self.initial, eta_min=self.eta_min)
        require_positive("CosineWarmRestarts", T_0=self.T_0)
        if self.T_mult < 1 or self.T_mult != int(self.T_mult):
            raise ValueError(f"CosineWarmRestarts: `T_mult` must be an integer >= 1, got {self.T_mult!r}.")

    def evaluate(self, t, m):
        if self.T_mult == 1:
            t_cur = t - self.T_0 * m.floor(t / self.T_0)
            t_i = self.T_0
        else:
            ratio = self.T_mult - 1.0
            restarts = m.floor(m.log(t / self.T_0 * ratio + 1.0) / math.log(self.T_mult))
            # The logarithm can land a hair below an integer at a restart boundary; the
            # start of each period is exact in integer arithmetic, so correct by one.
            start = self.T_0 * (m.pow(float(self.T_mult), restarts) - 1.0) / ratio
            following = self.T_0 * (m.pow(float(self.T_mult), restarts + 1.0) - 1.0) / ratio
            restarts = m.where(t >= following, restarts + 1.0, m.where(t < start, restarts - 1.0, restarts))
            start = self.T_0 * (m.pow(float(self.T_mult), restarts) - 1.0) / ratio
            t_cur = t - start
            t_i = self.T_0 * m.pow(float(self.T_mult), restarts)
        return self.eta_min + (self.initial - self.eta_min) * 0.5 * (1.0 + m.cos(m.pi * t_cur / t_i))
