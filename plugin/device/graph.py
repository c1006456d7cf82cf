"""The captured step as a sequence of operations, and the check of a later step against it.

Step 1 is recorded (every aten operation with its signature and the user line that ran
it, plus markers where each optimizer step begins and ends); a later step is compared
with it one operation at a time as it runs, so a change is reported at the operation
that differs, while the user's line that ran it is still on the stack.

One difference is expected rather than reported: an optimizer that creates its state
lazily (every torch.optim optimizer) runs initialisation operations inside its first
``step()`` and different ones afterwards. When step 1 created optimizer state, the part
of that optimizer's step from where the creation began is taken from the first verified
step instead; everything before it (in particular the forward and backward passes run
by a closure) is still compared with step 1.
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from .host_reads import VALUE_READ_OPS
from .location import Location, user_location
from .signature import OPTIMIZER_STEP_DONE, format_event

if TYPE_CHECKING:
    from .libraries import LibraryCall


def is_marker(event: tuple) -> bool:
    return isinstance(event[0], str)


class Graph:
    """The events of the captured step (operations and optimizer markers), in order."""

    def __init__(self, events: List[tuple], locations: List[Optional[Location]]):
        self.events = events
        self.locations = locations
        self.num_ops = sum(1 for event in events if not is_marker(event))
        # Stable across processes: the same step on the same shapes gives the same value.
        text = "\n".join(format_event(event) for event in events)
        self.fingerprint = hashlib.blake2b(text.encode(), digest_size=6).hexdigest()

    def __len__(self) -> int:
        return len(self.events)

    def describe(self, index: int) -> str:
        """Event ``index`` and the user line that ran it, on two lines."""
        return describe(self.events[index], self.locations[index])

    def __repr__(self) -> str:
        return f"Graph({self.num_ops} operations, fingerprint {self.fingerprint})"


def describe(event: tuple, location: Optional[Location]) -> str:
    where = f"at {location}" if location is not None else "at no line of user code (an autograd or library thread)"
    return f"{format_event(event)}\n            {where}"


class GraphRecorder:
    """Records the events of the capture step, with the line of each."""

    def __init__(self):
        self.events: List[tuple] = []
        self.locations: List[Optional[Location]] = []

    def __len__(self) -> int:
        return len(self.events)

    def on_event(self, event: tuple) -> None:
        self.events.append(event)
        self.locations.append(user_location())

    def graph(self) -> Graph:
        return Graph(self.events, self.locations)


def lazy_spans(graph: Graph, lazy_starts: Dict[int, int]) -> Dict[int, Tuple[int, int]]:
    """For each optimizer that created state in step 1: ``start -> (optimizer, end)``.

    ``lazy_starts`` maps an optimizer to the index of the first event at or after which
    it began creating state. The span ends at the marker that closes that optimizer's
    step; if it never closes (state created outside ``optimizer.step()``), nothing is
    relaxed for it.
    """
    spans: Dict[int, Tuple[int, int]] = {}
    for optimizer, start in sorted(lazy_starts.items(), key=lambda item: item[1]):
        done = (OPTIMIZER_STEP_DONE, optimizer)
        end = next((i for i in range(start, len(graph.events)) if graph.events[i] == done), None)
        overlaps = any(s <= start <= e for s, (_, e) in spans.items())
        if end is not None and not overlaps:
            spans[start] = (optimizer, end)
    return spans


class GraphMismatch:
    """Where a step first differed from the captured one.

    ``expected`` and ``actual`` are the two events (None past the end of either step),
    described with their lines in ``expected_text`` / ``actual_text``. ``library`` is the
    known library that ran the differing operation, when one did (set by the device).
    """

    def __init__(self, step: int, index: int, expected, expected_text, actual, actual_text, location):
        self.step = step
        self.index = index
        self.expected = expected
        self.expected_text = expected_text
        self.actual = actual
        self.actual_text = actual_text
        self.location = location
        self.library: Optional["LibraryCall"] = None

    @property
    def branch(self) -> Optional[Tuple[object, object]]:
        """The two results, when the differing events are the same host read with other results.

        Then the code that made the read took another branch on it: that code, not the
        line that called it, changed the operations.
        """
        expected, actual = self.expected, self.actual
        if expected is None or actual is None or is_marker(expected) or is_marker(actual):
            return None
        if expected[:3] != actual[:3] or expected[0] not in VALUE_READ_OPS:
            return None
        return expected[3], actual[3]

    def message(self, captured_step: int) -> str:
        branch, library = self.branch, self.library
        if library is not None and branch is not None:
            # The library's branch is the cause: say so first, where a one-line summary shows it.
            called = f"\n  called from {self.location}" if self.location is not None else ""
            return (
                f"step {self.step}: {library.library} took another branch on a value it read on the host, so "
                f"the step runs other operations than the captured step {captured_step} (from operation "
                f"#{self.index + 1} on); not your code:\n  {library}\n  the value read: {branch[0]!r} at the "
                f"captured step {captured_step}, {branch[1]!r} at step {self.step}{called}\n{library.advice}"
            )
        if self.actual is None:
            head = (
                f"step {self.step} ended after {self.index} operations, but the captured step "
                f"{captured_step} went on with:\n  captured: {self.expected_text}"
            )
        elif self.expected is None:
            head = (
                f"step {self.step} ran more operations than the {self.index} of the captured step "
                f"{captured_step}; the first extra one is:\n  now:      {self.actual_text}"
            )
        else:
            head = (
                f"step {self.step} ran a different sequence of operations than the captured step "
                f"{captured_step}, from operation #{self.index + 1} on:\n"
                f"  captured: {self.expected_text}\n  now:      {self.actual_text}"
            )
        cause = (
            f"The value read on the host decides a branch in Python: {branch[0]!r} at the captured step "
            f"{captured_step}, {branch[1]!r} at step {self.step}.\n"
            if branch is not None
            else ""
        )
        return (
            f"{head}\n{cause}A compiled step runs the same operations every time: Python control flow on "
            f"the step number or on data (`if step % 100 == 0:`, a branch taken only sometimes, a "
            f"loop whose length varies) changes the graph. Compute both branches and select with "
            f"torch.where, or move the varying work out of the step (into a step closure or after it)."
        )


class GraphVerifier:
    """Compares the events of a later step with the captured graph, as they happen.

    With ``spans`` (lazy optimizer state in step 1), the events inside them are taken
    from this step instead of compared, and ``adopted()`` gives the graph to verify the
    following steps against.
    """

    def __init__(self, graph: Graph, step: int, spans: Dict[int, Tuple[int, int]]):
        self.graph = graph
        self.step = step
        self.spans = spans
        self.cursor = 0
        self.mismatch: Optional[GraphMismatch] = None
        self._free_until: Optional[Tuple[tuple, int]] = None
        self._rebuild = bool(spans)
        self._events: List[tuple] = []
        self._locations: List[Optional[Location]] = []

    def on_event(self, event: tuple) -> Optional[GraphMismatch]:
        """Compare one event; return the mismatch if this is the first difference."""
        if self.mismatch is not None:
            return None
        if self._free_until is not None:
            self._keep(event, user_location())
            done, end = self._free_until
            if event == done:
                self._free_until = None
                self.cursor = end + 1
            return None
        cursor = self.cursor
        span = self.spans.get(cursor)
        if span is not None:
            optimizer, end = span
            self._free_until = ((OPTIMIZER_STEP_DONE, optimizer), end)
            return self.on_event(event)
        events = self.graph.events
        if cursor < len(events) and events[cursor] == event:
            if self._rebuild:
                self._keep(event, self.graph.locations[cursor])
            self.cursor = cursor + 1
            return None
        expected = events[cursor] if cursor < len(events) else None
        expected_text = self.graph.describe(cursor) if expected is not None else None
        location = user_location()
        self.mismatch = GraphMismatch(self.step, cursor, expected, expected_text, event, describe(event, location), location)
        return self.mismatch

    def finish(self, location: Optional[Location]) -> Optional[GraphMismatch]:
        """At the end of the step: the captured step must have ended here too."""
        if self.mismatch is not None:
            return None
        if self._free_until is None and self.cursor >= len(self.graph.events):
            return None
        index = self._free_until[1] if self._free_until is not None else self.cursor
        self.mismatch = GraphMismatch(
            self.step, index, self.graph.events[index], self.graph.describe(index), None, None, location
        )
        return self.mismatch

    def adopted(self) -> Optional[Graph]:
        """The graph to verify later steps against, if this step re-captured a lazy span."""
        if not self._rebuild or self.mismatch is not None:
            return None
        return Graph(self._events, self._locations)

    def _keep(self, event: tuple, location: Optional[Location]) -> None:
        self._events.append(event)
        self._locations.append(location)

