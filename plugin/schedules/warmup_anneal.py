"""Linear warmup to a peak, then one of several decays to an end value by a fixed step.

This is the learning-rate law of Megatron-Core's ``OptimizerParamScheduler``, written
as a closed form: the warmup includes its last step (``t == warmup_steps`` is the
peak), the decay runs until ``decay_steps`` inclusive, and the end value holds after.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from .anneal import Anneal
from .base import Schedule, require_choice, require_finite, require_non_negative

DECAY_STYLES = ("linear", "cosine", "inverse-square-root", "constant", "WSD")
WSD_DECAY_STYLES = ("linear", "cosine", "exponential", "minus_sqrt")


@dataclass(frozen=True)
class WarmupAnneal(Schedule):
    """``initial`` up to ``peak`` over ``warmup_steps``, then ``style`` down to ``end`` by ``decay_steps``.

    After the warmup (``t > warmup_steps``) and until ``decay_steps``:

    * ``linear`` / ``cosine``: ``Anneal(peak, end, decay_steps - warmup_steps, style)``
      from the end of the warmup;
    * ``inverse-square-root``: ``max(end, peak * sqrt(max(warmup_steps, 1) / max(t, 1)))``;
    * ``constant``: ``peak``, and it stays there after ``decay_steps`` too;
    * ``WSD``: ``peak`` until ``wsd_decay_steps`` remain, then
      ``Anneal(peak, end, wsd_decay_steps, wsd_style)`` (``wsd_style`` one of linear,
      cosine, exponential, minus_sqrt).

    After ``decay_steps`` the value is ``end`` (except for ``constant``).
    """

    initial: float
    peak: float
    end: float
    warmup_steps: int
    decay_steps: int
    style: str = "cosine"
    wsd_decay_steps: Optional[int] = None
    wsd_style: Optional[str] = None

    def __post_init__(self):
        owner = "WarmupAnneal"
        require_finite(owner, initial=self.initial, peak=self.peak, end=self.end)
        require_non_negative(owner, warmup_steps=self.warmup_steps, decay_steps=self.decay_steps)
        require_choice(owner, "style", self.style, DECAY_STYLES)
        if not self.warmup_steps < self.decay_steps:
            raise ValueError(
                f"{owner}: `warmup_steps` ({self.warmup_steps}) must be smaller than `decay_steps` "
                f"({self.decay_steps}): the decay ends at `decay_steps`, counted from step 0."
            )
        if self.style == "WSD":
            if self.wsd_decay_steps is None:
                raise ValueError(f"{owner}: style 'WSD' needs `wsd_decay_steps` (the length of the final anneal).")
            require_non_negative(owner, wsd_decay_steps=self.wsd_decay_steps)
            require_choice(owner, "wsd_style", self.wsd_style, WSD_DECAY_STYLES)
        object.__setattr__(self, "_anneal", self._build_anneal())

    def _build_anneal(self) -> Optional[Anneal]:
        """The anneal of the decay phase, for the styles that have one."""
        if self.style in ("linear", "cosine"):
            return Anneal(self.peak, self.end, self.decay_steps - self.warmup_steps, self.style)
        if self.style == "WSD" and self.wsd_decay_steps > 0:
            return Anneal(self.peak, self.end, self.wsd_decay_steps, self.wsd_style)
        return None

    def _decay(self, t, m):
        """The value during the decay phase, from the absolute step."""
        style = self.style
        if style in ("linear", "cosine"):
            return self._anneal.evaluate(t - self.warmup_steps, m)
        if style == "WSD" and self._anneal is not None:
            # Every anneal shape is exactly 1 at progress 0, so clamping the local step at 0
            # gives the held value, in the same form, before the anneal starts.
            return self._anneal.evaluate(m.maximum(t - (self.decay_steps - self.wsd_decay_steps), 0.0), m)
        if style == "inverse-square-root":
            numerator = self.peak * math.sqrt(max(self.warmup_steps, 1))
            return m.maximum(numerator / m.sqrt(m.maximum(t, 1.0)), self.end)
        # constant, or WSD without anneal steps (which holds the peak in Megatron-Core's form)
        return m.const(t, self.peak if style == "constant" else self.end + 1.0 * (self.peak - self.end))

    def _phase(self, k, t, m):
        """Phase 0 is the warmup (t <= warmup_steps), 1 the decay, 2 the end value."""
        if k == 1:
            return self._decay(t, m)
        if k == 0:
            return self.initial + (self.peak - self.initial) * t / self.warmup_steps
        return m.const(t, self.end)

    def evaluate(self, t, m):
        boundaries = (self.warmup_steps,) if self.style == "constant" else (self.warmup_steps, self.decay_steps)
        if self.warmup_steps > 0:
            return m.piecewise(t, boundaries, lambda k, t: self._phase(k, t, m), after=True)
        return m.piecewise(t, boundaries[1:], lambda k, t: self._phase(k + 1, t, m), after=True)
