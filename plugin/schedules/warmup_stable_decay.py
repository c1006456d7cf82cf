"""Warmup-stable-decay with a decay before every checkpoint, and the checkpoint spacing it uses.

The WSD schedule (Wen et al. 2024, "Understanding Warmup-Stable-Decay Learning Rates")
holds a high value and decays it only shortly before each checkpoint, so that every
checkpoint is a usable model and training can continue from the pre-decay state.
Checkpoints are spaced geometrically: each period ends at twice the previous
checkpoint, the last one at (or just before) the end of training.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import List, NamedTuple, Tuple

from .anneal import Anneal
from .decay import Constant
from .base import Schedule, require_choice, require_finite, require_increasing, require_non_negative, require_positive_int

WSD_DECAY_SHAPES = ("minus_sqrt", "inverse_proportional")


def geometric_checkpoints(total_steps: int, num_checkpoints: int) -> List[int]:
    """``num_checkpoints`` steps, each twice the previous, the last at most ``total_steps``.

    The first is ``total_steps // 2 ** (num_checkpoints - 1)``: one checkpoint sits at
    the end, two at half and the end, three at a quarter, half and the end, and so on.
    """
    require_positive_int("geometric_checkpoints", total_steps=total_steps, num_checkpoints=num_checkpoints)
    total_steps, num_checkpoints = int(total_steps), int(num_checkpoints)
    if num_checkpoints == 1:
        return [total_steps]
    first = total_steps // 2 ** (num_checkpoints - 1)
    if first < 1:
        raise ValueError(
            f"{num_checkpoints} checkpoints need at least {2 ** (num_checkpoints - 1)} steps, each "
            f"twice the previous; got total_steps={total_steps}. Use fewer checkpoints or more steps."
        )
    return [first * 2**i for i in range(num_checkpoints)]


class DecayPeriod(NamedTuple):
    """One checkpoint period: stable until ``pre_decay_step``, decaying until ``period_end``."""

    period_start: int
    period_end: int
    decay_steps: int
    pre_decay_step: int


def decay_periods(checkpoints, decay_ratio: float) -> List[DecayPeriod]:
    """The periods between consecutive checkpoints, each decaying over ``int(length * ratio)`` steps."""
    periods = []
    start = 0
    for end in checkpoints:
        decay_steps = int((end - start) * decay_ratio)
        periods.append(DecayPeriod(start, end, decay_steps, end - decay_steps))
        start = end
    return periods


@dataclass(frozen=True)
class WarmupStableDecay(Schedule):
    """Linear warmup, then ``peak`` with a decay to ``peak * floor_ratio`` before each checkpoint.

    * ``t < warmup_steps``: ``warmup_start + t / warmup_steps * (peak - warmup_start)``.
    * In each period ``[start, checkpoint)``: ``peak`` until ``int(length * decay_ratio)``
      steps remain, then ``peak * Anneal(1, floor_ratio, decay_steps, decay_shape)``
      (``minus_sqrt``: ``floor + (1 - floor)(1 - sqrt r)``; ``inverse_proportional``:
      ``1 / (r / floor + 1 - r)``).
    * After the last checkpoint: ``peak * floor_ratio``.

    Each period starts again at ``peak``: the value after a checkpoint is the pre-decay
    one, which is what makes continuing from the pre-decay checkpoint seamless. The
    warmup takes precedence over the periods it overlaps.
    """

    peak: float
    checkpoints: Tuple[int, ...]
    decay_ratio: float = 0.1
    floor_ratio: float = 1e-6
    decay_shape: str = "minus_sqrt"
    warmup_steps: int = 0
    warmup_start: float = 0.0

    def __post_init__(self):
        owner = "WarmupStableDecay"
        object.__setattr__(self, "checkpoints", tuple(int(c) for c in self.checkpoints))
        require_finite(owner, peak=self.peak, warmup_start=self.warmup_start)
        require_non_negative(owner, floor_ratio=self.floor_ratio, warmup_steps=self.warmup_steps)
        if not 0.0 <= self.decay_ratio <= 1.0:
            raise ValueError(f"{owner}: `decay_ratio` must be in [0, 1], got {self.decay_ratio!r}.")
        if not self.checkpoints:
            raise ValueError(f"{owner}: needs at least one checkpoint.")
        require_increasing(owner, "checkpoints", self.checkpoints)
        if self.checkpoints[0] <= 0:
            raise ValueError(f"{owner}: the first checkpoint must be after step 0, got {self.checkpoints[0]}.")
        require_choice(owner, "decay_shape", self.decay_shape, WSD_DECAY_SHAPES)
        object.__setattr__(self, "_plan", self._build_plan())

    def decay_periods(self) -> List[DecayPeriod]:
        """The checkpoint periods, in steps of this schedule: the WSD decay-period protocol.

        Checkpoint tools (``wse.callbacks.WSDCheckpointCallback``) read where each period
        starts, stops being stable (``pre_decay_step``) and ends from this method.
        """
        return decay_periods(self.checkpoints, self.decay_ratio)

    def _build_plan(self):
        """(boundaries, parts): part k, ``scale * schedule(t - offset)``, holds from boundary k-1."""
        peak = Constant(self.peak)
        boundaries, parts = [], [(0, 1.0, peak)]
        for period in decay_periods(self.checkpoints, self.decay_ratio):
            if period.decay_steps > 0:
                unit = Anneal(1.0, self.floor_ratio, period.decay_steps, self.decay_shape)
                boundaries.append(period.pre_decay_step)
                parts.append((period.pre_decay_step, self.peak, unit))
            boundaries.append(period.period_end)
            parts.append((0, 1.0, peak))
        parts[-1] = (0, 1.0, Constant(self.peak * self.floor_ratio))
        if self.warmup_steps > 0:
            # The warmup replaces whatever it overlaps; the part active at its end takes over.
            active = bisect.bisect_right(boundaries, self.warmup_steps)
            warmup = (0, 1.0, _LinearWarmup(self.warmup_start, self.peak, self.warmup_steps))
            boundaries, parts = [self.warmup_steps] + boundaries[active:], [warmup] + parts[active:]
        return tuple(boundaries), tuple(parts)

    def evaluate(self, t, m):
        boundaries, parts = self._plan

        def part(k, t):
            offset, scale, schedule = parts[k]
            value = schedule.evaluate(t - offset, m)
            return value if scale == 1.0 else scale * value

        return m.piecewise(t, boundaries, part)


@dataclass(frozen=True)
class _LinearWarmup(Schedule):
    """``start + (t / steps) * (peak - start)``: the warmup in the form its users write it."""

    start: float
    peak: float
    steps: float

    def evaluate(self, t, m):
        return self.start + (t / self.steps) * (self.peak - self.start)
