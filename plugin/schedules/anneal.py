"""Closed forms that move between two values over a fixed number of steps along a named curve.

``Anneal`` decays: it is written relative to its ``end`` (``end + remaining * (initial -
end)``), the form Megatron-Core and pytorch-accelerated use for learning-rate decay.
``Ramp`` rises: it is written relative to its ``initial`` (``initial + progress * (end -
initial)``), the form of linear warmups and Megatron-Core's weight-decay increment.
Writing each in the form its users write it keeps the two paths bit-close to theirs near
the values that matter (a decay close to zero, a ramp just past its start).
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import Schedule, require_choice, require_finite, require_non_negative, require_positive

# Fraction of the distance still to go at progress r in [0, 1] (1 at r=0, 0 at r=1).
ANNEAL_SHAPES = ("linear", "cosine", "exponential", "minus_sqrt", "inverse_proportional")
# Fraction of the distance covered at progress r in [0, 1] (0 at r=0, 1 at r=1).
RAMP_SHAPES = ("linear", "cosine")


_REMAINING = {
    "linear": lambda r, m: 1.0 - r,
    "cosine": lambda r, m: 0.5 * (1.0 + m.cos(m.pi * r)),
    "exponential": lambda r, m: 2.0 * m.pow(0.5, r) - 1.0,
    "minus_sqrt": lambda r, m: 1.0 - m.sqrt(m.maximum(r, 0.0)),
}


@dataclass(frozen=True)
class Anneal(Schedule):
    """From ``initial`` to ``end`` over ``total_steps`` along ``shape``, then ``end``.

    With progress ``r = (t / total_steps) ** k_decay`` (clipped to 1) the value is
    ``end + remaining(r) * (initial - end)`` where ``remaining`` is

    * ``linear``: ``1 - r``
    * ``cosine``: ``(1 + cos(pi r)) / 2``
    * ``exponential``: ``2 * 0.5 ** r - 1`` (Megatron-Core's WSD exponential anneal)
    * ``minus_sqrt``: ``1 - sqrt(r)``

    and ``inverse_proportional`` interpolates the reciprocal linearly,
    ``1 / value = (1 - r) / initial + r / end`` (the WSD paper's decay; it needs
    non-negative ends; with one end 0 it is the limit, 0 strictly between the ends).

    ``k_decay`` is the k-decay of Zhang et al. (2020): ``k > 1`` holds the value near
    ``initial`` for longer, ``k < 1`` leaves it sooner.
    """

    initial: float
    end: float
    total_steps: float
    shape: str = "cosine"
    k_decay: float = 1.0

    def __post_init__(self):
        require_finite("Anneal", initial=self.initial, end=self.end)
        require_positive("Anneal", total_steps=self.total_steps, k_decay=self.k_decay)
        require_choice("Anneal", "shape", self.shape, ANNEAL_SHAPES)
        if self.shape == "inverse_proportional":
            require_non_negative("Anneal", initial=self.initial, end=self.end)

    def progress(self, t, m):
        """``r`` in [0, 1]: how far along the anneal step ``t`` is."""
        if self.k_decay == 1.0:
            r = t / self.total_steps
        else:
            r = m.pow(m.maximum(t, 0.0), self.k_decay) / self.total_steps ** self.k_decay
        return m.minimum(r, 1.0)

    def evaluate(self, t, m):
        r = self.progress(t, m)
        if self.shape == "inverse_proportional":
            return self._harmonic(r, m)
        return self.end + _REMAINING[self.shape](r, m) * (self.initial - self.end)

    def _harmonic(self, r, m):
        initial, end = self.initial, self.end
        if initial == end:
            return m.const(r, end)
        if initial == 0.0 or end == 0.0:
            # The limit of the reciprocal interpolation: an infinite 1/value, so 0, strictly
            # between the ends.
            inside = m.where(r >= 1.0, m.const(r, end), m.const(r, 0.0))
            return m.where(r <= 0.0, m.const(r, initial), inside)
        # The reciprocal form multiplied through by initial * end; the denominator is
        # exactly `end` at r = 0 and `initial` at r = 1.
        return initial * end / ((1.0 - r) * end + r * initial)


@dataclass(frozen=True)
class Ramp(Schedule):
    """From ``initial`` to ``end`` over ``total_steps`` along ``shape``, then ``end``.

    With progress ``r = t / total_steps`` (clipped to [0, 1]) the value is
    ``initial + covered(r) * (end - initial)`` where ``covered`` is ``r`` (``linear``)
    or ``(1 + cos(pi (1 - r))) / 2`` (``cosine``).
    """

    initial: float
    end: float
    total_steps: float
    shape: str = "linear"

    def __post_init__(self):
        require_finite("Ramp", initial=self.initial, end=self.end)
        require_positive("Ramp", total_steps=self.total_steps)
        require_choice("Ramp", "shape", self.shape, RAMP_SHAPES)

    def evaluate(self, t, m):
        r = m.minimum(m.maximum(t / self.total_steps, 0.0), 1.0)
        if self.shape == "linear":
            covered = r
        else:
            covered = 0.5 * (m.cos(m.pi * (1.0 - r)) + 1.0)
        return self.initial + covered * (self.end - self.initial)
