"""What the device reports at the end of a run: the graph, the memory, the cost, the violations."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional


def _bytes(count: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


@dataclass(frozen=True)
class DeviceReport:
    """A summary of the device's run; ``format()`` gives a few lines for a log."""

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

    @property
    def total_violations(self) -> int:
        return sum(self.violations.values())

    def format(self) -> str:
        lines = [
            f"wse device: {self.steps} steps, {self.steps_verified} verified against the captured "
            f"step (check={self.check!r}), run {self.execution}"
        ]
        if self.graph_fingerprint is None:
            lines.append("graph: not captured")
        else:
            at = f" at step {self.captured_step}" if self.captured_step not in (None, 1) else ""
            lines.append(
                f"graph: {self.graph_ops} operations (fingerprint {self.graph_fingerprint}), "
                f"captured{at} in {self.capture_seconds:.3f} s"
            )
        lines.append(
            f"memory: parameters {_bytes(self.parameter_bytes)}, optimizer state {_bytes(self.optimizer_state_bytes)}"
        )
        if self.total_violations:
            kinds = ", ".join(f"{kind}: {count}" for kind, count in sorted(self.violations.items()))
            lines.append(f"violations: {self.total_violations} ({kinds})")
        else:
            lines.append("violations: none")
        if self.compile_seconds is not None:
            lines.append(
                f"compile: {self.compile_seconds:.2f} s for the first compiled step, "
                f"{self.compiled_graphs} graph(s), {self.recompilations} recompilation(s)"
            )
        return "\n".join(lines)
