"""What a WSD checkpointer does at each step: save before a decay, save after it, fork, hold."""
from __future__ import annotations

from typing import List, NamedTuple, Sequence

from .periods import DecayPeriod

__all__ = ["Event", "CheckpointPlan", "pre_decay_name", "post_decay_name", "PRE_DECAY", "POST_DECAY"]

PRE_DECAY = "wsd_pre_decay"
POST_DECAY = "wsd_post_decay"


def pre_decay_name(step: int) -> str:
    """``checkpoint_{step}_wsd_pre_decay``: a full training state, as pytorch-accelerated names it."""
    return f"checkpoint_{step}_{PRE_DECAY}"


def post_decay_name(step: int) -> str:
    """``checkpoint_{step}_wsd_post_decay.pt``: the decayed model (and optimizer/scheduler states)."""
    return f"checkpoint_{step}_{POST_DECAY}.pt"


class Event(NamedTuple):
    """One thing to do after an optimizer update: ``kind`` is PRE_DECAY or POST_DECAY."""

    kind: str
    period: DecayPeriod


class CheckpointPlan:
    """The events of a run with decay ``periods``, by the number of optimizer updates done.

    Without branches the run itself decays: the pre-decay state is saved when
    ``pre_decay_step`` updates are done, the decayed one at ``period_end``.

    With branches the run never decays: at ``pre_decay_step`` a branch runs the decay
    and writes the post-decay checkpoint, and the run holds its stable learning rate
    from every ``pre_decay_step`` to its ``period_end`` (both included, so the value
    left after the last update of a period is the stable one) and after the last period.
    A period without decay steps has nothing to branch: its end is saved from the run.
    """

    def __init__(self, periods: Sequence[DecayPeriod], branch: bool = False):
        self.periods = list(periods)
        self.branch = bool(branch)
        # Looked up after every optimizer update: dictionaries, not scans.
        self._events = {}
        self._branches = {}
        for period in self.periods:
            self._events.setdefault(period.pre_decay_step, []).append(Event(PRE_DECAY, period))
            if not self.branch or period.decay_steps == 0:
                self._events.setdefault(period.period_end, []).append(Event(POST_DECAY, period))
            if self.branch and period.decay_steps > 0:
                self._branches.setdefault(period.pre_decay_step, []).append(period)
        self._windows = [(p.pre_decay_step, p.period_end) for p in self.periods]
        self._last_end = self.periods[-1].period_end if self.periods else 0

    def events_at(self, step: int) -> List[Event]:
        """What to do once ``step`` updates are done, pre-decay saves first."""
        return self._events.get(step, [])

    def branches_at(self, step: int) -> List[DecayPeriod]:
        """The periods whose decay a branch runs from ``step`` (branch mode only)."""
        return self._branches.get(step, [])

    def holds(self, step: int) -> bool:
        """Whether the run keeps its stable learning rate for the update after ``step`` (branch mode)."""
        if not self.branch:
            return False
        return step > self._last_end or any(start <= step <= end for start, end in self._windows)

    @property
    def checkpoint_steps(self) -> List[int]:
        return [p.period_end for p in self.periods]

    def __repr__(self) -> str:
        mode = "branch" if self.branch else "in-run"
        periods = ", ".join(f"[{p.period_start}, {p.pre_decay_step}, {p.period_end}]" for p in self.periods)
        return f"CheckpointPlan({mode}: {periods})"
