"""What the device reports at the end of a run: the graph, the memory, the cost, the violations."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple


def _bytes(count: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


@dataclass(frozen=True)
class DeviceReport:
    """What the device did in a run: what it captured, verified, left unchecked, and found.

    ``summary()`` is one line for the end of a run; ``format()`` gives the detail, a few
    lines for a log or an explicit look. Both say what was not checked as plainly as what
    was: ``check="off"`` checks nothing, and steps past the verification window are not
    checked beyond their input shapes.
    """

    check: str
    execution: str
    steps: int
    steps_verified: int
    graph_ops: int
    graph_fingerprint: Optional[str]
    parameter_bytes: int
    optimizer_state_bytes: int
    capture_seconds: Optional[float]
    violations: Dict[str, int] = field(default_factory=dict)
    captured_step: Optional[int] = None
    compile_seconds: Optional[float] = None
    compiled_graphs: Optional[int] = None
    recompilations: int = 0
    #: The step the device captures (``capture_step``), captured or not yet.
    capture_at: int = 1
    #: Past the verification window, every step whose number is a multiple of this is verified.
    verify_every: Optional[int] = None
    #: Steps outside the checked ones whose inputs were still compared with the captured step's.
    steps_inputs_compared: int = 0
    #: Verified steps whose operations were not compared: their inputs differed (``check="warn"``).
    steps_graph_not_compared: int = 0
    #: Code whose host reads are not violations (``allow_host_reads_in``, ``host_code``).
    reads_allowed_in: Tuple[str, ...] = ()

    @property
    def total_violations(self) -> int:
        return sum(self.violations.values())

    @property
    def captured(self) -> bool:
        return self.graph_fingerprint is not None

    @property
    def steps_checked(self) -> int:
        """The steps captured or verified (instrumented: operations, host reads, state)."""
        return (1 if self.captured else 0) + self.steps_verified

    @property
    def steps_unchecked(self) -> int:
        """The steps run without the device's instruments (at most their inputs compared)."""
        return self.steps - self.steps_checked

    def _violations(self, counted: bool = True) -> str:
        if not self.total_violations:
            return "no violations"
        kinds = ", ".join(f"{kind}: {count}" for kind, count in sorted(self.violations.items()))
        warned = ", warned once per kind" if self.check == "warn" else ""
        total = _count(self.total_violations, "violation") if counted else str(self.total_violations)
        return f"{total} ({kinds}){warned}"

    def summary(self) -> str:
        """One line: how many steps, what was checked, what was found (or that nothing was checked)."""
        steps = _count(self.steps, "step")
        if self.check == "off":
            return f"wse device: {steps}, checks off: nothing captured or verified"
        if not self.captured:
            found = f": {self._violations()}" if self.total_violations else ""
            return f"wse device: {steps}, none captured (the device captures step {self.capture_at}): nothing verified{found}"
        fast = f", then run {self.execution}" if self.execution != "eagerly" else ""
        return (
            f"wse device: {steps}, step {self.captured_step} captured and {self.steps_verified} verified "
            f"against it{fast}: {self._violations()}"
        )

    def format(self) -> str:
        """The detail, on a few lines: steps, checks, what was not checked, graph, memory, violations."""
        checked = self.check != "off"
        # The first line is the summary itself, so that the end-of-run line and the report agree.
        lines = [self.summary()]
        lines.append(f"checked (check={self.check!r}): {self._checked()}" if checked else f"checked: {self._checked()}")
        unchecked = self._unchecked()
        if unchecked:
            lines.append(f"not checked: {unchecked}")
        if self.captured:
            at = f" at step {self.captured_step}" if self.captured_step not in (None, 1) else ""
            lines.append(
                f"graph: {self.graph_ops} operations (fingerprint {self.graph_fingerprint}), "
                f"captured{at} in {self.capture_seconds:.3f} s"
            )
        lines.append(
            f"memory: parameters {_bytes(self.parameter_bytes)}, optimizer state {_bytes(self.optimizer_state_bytes)}"
        )
        if not checked:
            lines.append("violations: not looked for (check='off')")
        elif self.total_violations:
            lines.append(f"violations: {self._violations(counted=False)}")
        elif self.captured:
            lines.append(f"violations: none in the {_count(self.steps_checked, 'checked step')}")
        else:
            lines.append("violations: none found, but no step was captured or verified")
        if self.compile_seconds is not None:
            lines.append(
                f"compile: {self.compile_seconds:.2f} s for the first compiled step, "
                f"{self.compiled_graphs} graph(s), {self.recompilations} recompilation(s)"
            )
        return "\n".join(lines)

    def _checked(self) -> str:
        if self.check == "off":
            return "nothing (check='off' installs nothing: no step is captured, verified or compared)"
        if not self.captured:
            return f"nothing (the device captures step {self.capture_at}; the run had {self.steps})"
        parts = [f"step {self.captured_step} captured"]
        if self.steps_verified:
            every = f" (those right after it, then every multiple of {self.verify_every})" if self.verify_every else ""
            parts.append(
                f"{_count(self.steps_verified, 'later step')} verified against it{every}: their operations, host "
                f"reads, optimizer state, hyperparameters and inputs"
            )
            if self.steps_graph_not_compared:
                parts.append(
                    f"the operations of {self.steps_graph_not_compared} of them not compared (their inputs differed "
                    f"from the captured step's)"
                )
        else:
            parts.append("no later step verified")
        if self.steps_inputs_compared:
            parts.append(f"the inputs of {_count(self.steps_inputs_compared, 'other step')} compared with the captured ones")
        return "; ".join(parts)

    def _unchecked(self) -> str:
        if self.check == "off":
            return ""
        notes = []
        if self.steps_unchecked:
            notes.append(
                f"the operations, host reads and optimizer state of the {_count(self.steps_unchecked, 'step')} "
                f"neither captured nor verified (run {self.execution})"
            )
        if self.reads_allowed_in:
            notes.append(f"host reads in {', '.join(self.reads_allowed_in)} (allowed)")
        return "; ".join(notes)
