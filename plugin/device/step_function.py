"""A step given as a function: checked eagerly while the device verifies, then run fast.

Checked steps run the function itself under the device's instruments; once the
verification window is past, the function runs compiled (``compile=True``) and/or
replayed from a CUDA graph (``replay="cuda_graph"``), still between ``begin_step`` and
``end_step`` so the step count, the inputs check and the step closures stay the same.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Callable, Optional

from .replay import CompiledStep, CudaGraphStep

if TYPE_CHECKING:
    from .device import Device


class StepFunction:
    """A step function run by a device: checked eagerly while verifying, then fast."""

    def __init__(self, device: "Device", fn: Callable):
        self.device = device
        self.fn = fn
        self.compiled_step: Optional[CompiledStep] = None
        self.graph_step: Optional[CudaGraphStep] = None
        self._fast: Optional[Callable] = None
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        device = self.device
        fast = device.compile or device.replay == "cuda_graph"
        if not fast or device.next_step_checked():
            with device.step(*args, **kwargs):
                return self.fn(*args, **kwargs)
        runner = self._runner()
        device.begin_step(*args, **kwargs)
        try:
            out = runner(*args, **kwargs)
        except BaseException:
            device.abort_step()
            raise
        device.end_step()
        device.check_recompilation()
        return out

    def _runner(self) -> Callable:
        """The compiled and/or CUDA-graph form of the step, built on first use."""
        if self._fast is None:
            device = self.device
            fast = self.fn
            if device.compile:
                self.compiled_step = fast = device.compiled(fast)
            if device.replay == "cuda_graph":
                self.graph_step = fast = device.cuda_graphed(fast)
            self._fast = fast
        return self._fast
