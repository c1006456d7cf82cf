"""The options of ``WSEStrategy``: how strictly it enforces its rules, and the device settings."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Optional, Union

from .. import rules
from .errors import WSEStrategyWarning

CHECK_MODES = ("strict", "warn", "off")
REPLAY_MODES = (None, "cuda_graph")

# The strictness rules are ``wse.rules``' (shared with ``wse.accelerate``), bound to the
# strategy's name and warning category. Bound with ``partial`` rather than wrapped, so
# that a warning is still attributed to the caller's caller, as ``rules.enforce`` intends.
validate_strict = functools.partial(rules.validate_strict, owner="WSEStrategy")
enforce = functools.partial(rules.enforce, category=WSEStrategyWarning)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class DeviceOptions:
    """Settings of the static-graph device (capture, verify, replay) that runs the training step.

    Args:
        check: ``"strict"`` raises on a broken static-graph contract, ``"warn"`` warns once
            per kind of violation, ``"off"`` checks nothing and adds no cost.
        verify_steps: how many steps after the captured first one are verified.
        verify_every: after those, verify every ``verify_every``-th step (``None``: never).
        compile: run the verified step through ``torch.compile``.
        replay: ``"cuda_graph"`` replays the verified step as a CUDA graph (CUDA devices only).
        compile_backend: the ``torch.compile`` backend (``"aot_eager"`` traces and runs the
            compiled graphs without generating code: a quick check of the compiled path).
    """

    check: str = "strict"
    verify_steps: int = 3
    verify_every: Optional[int] = None
    compile: bool = False
    replay: Optional[str] = None
    compile_backend: Union[str, Callable] = "inductor"

    def __post_init__(self):
        if self.check not in CHECK_MODES:
            raise ValueError(
                f"WSEStrategy: `check` must be one of {CHECK_MODES}, got {self.check!r}. "
                f"'strict' raises on a step that breaks the static-graph contract, 'warn' warns once "
                f"per kind, 'off' skips the checks."
            )
        if not _is_int(self.verify_steps) or self.verify_steps < 0:
            raise ValueError(
                f"WSEStrategy: `verify_steps` must be an integer >= 0 (steps verified after the "
                f"captured one), got {self.verify_steps!r}."
            )
        if self.verify_every is not None and (not _is_int(self.verify_every) or self.verify_every < 1):
            raise ValueError(
                f"WSEStrategy: `verify_every` must be None (no later verification) or an integer >= 1, "
                f"got {self.verify_every!r}."
            )
        if not isinstance(self.compile, bool):
            raise TypeError(f"WSEStrategy: `compile` must be True or False, got {self.compile!r}.")
        if not (isinstance(self.compile_backend, str) or callable(self.compile_backend)):
            raise TypeError(
                f"WSEStrategy: `compile_backend` must be a torch.compile backend name (e.g. 'inductor', "
                f"'aot_eager') or a backend callable, got {self.compile_backend!r}."
            )
        if self.replay not in REPLAY_MODES:
            raise ValueError(
                f"WSEStrategy: `replay` must be one of {REPLAY_MODES}, got {self.replay!r}. "
                f"Use replay='cuda_graph' on a CUDA device, or leave it None."
            )

    def check_device(self, device) -> None:
        """Refuse settings the root device cannot honour (called once the device is known)."""
        if self.replay == "cuda_graph" and getattr(device, "type", device) != "cuda":
            raise ValueError(
                f"WSEStrategy: replay='cuda_graph' needs a CUDA device, but the strategy runs on "
                f"{device}. Use accelerator='gpu', or leave `replay` None (compile=True works on any device)."
            )

    @property
    def fast(self) -> bool:
        """Whether the verified step runs compiled or replayed rather than eagerly."""
        return self.compile or self.replay is not None

    def describe(self) -> str:
        """The settings as constructor arguments (the backend only when not the default)."""
        backend = "" if self.compile_backend == "inductor" else f", compile_backend={self.compile_backend!r}"
        return (
            f"check={self.check!r}, verify_steps={self.verify_steps}, verify_every={self.verify_every}, "
            f"compile={self.compile}, replay={self.replay!r}{backend}"
        )

    def describe_checks(self, capture_step: int = 1) -> str:
        """Which steps are checked, in words (``capture_step``: the step the device captures)."""
        if self.check == "off":
            return "check='off': no step is checked"
        consequence = "violations raise" if self.check == "strict" else "violations warn once per kind"
        first, last = capture_step + 1, capture_step + self.verify_steps
        if not self.verify_steps:
            verified = "no step verified"
        elif first == last:
            verified = f"step {first} verified"
        else:
            verified = f"steps {first}-{last} verified"
        later = f", then every {self.verify_every} steps" if self.verify_every is not None else ""
        before = ""
        if capture_step == 2:
            before = " (DDP re-buckets the gradients during step 1, which runs unchecked)"
        elif capture_step > 2:
            before = f" (steps 1-{capture_step - 1} run unchecked)"
        return f"check={self.check!r}: step {capture_step} captured{before}, {verified}{later}; {consequence}"

