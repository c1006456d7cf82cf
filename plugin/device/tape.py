"""The two torch modes installed during a checked step, and only then.

``OpTape`` (a TorchDispatchMode) sees every aten operation the step runs, backward
included, because autograd dispatches through it: it hands each one's signature to the
graph check and flags the operations that read the host (``_local_scalar_dense``,
data-dependent shapes, device-to-host copies). ``HostReadGuard`` (a TorchFunctionMode)
sees the Tensor methods that reach the host without an aten operation -- ``.numpy()``,
``.tolist()``, ``.cpu()`` of a CPU tensor, printing -- which matter on a CPU-only
machine where the simulated device is the host.
"""
from __future__ import annotations

from typing import Callable

from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from .location import CodeScope, called_through
from .signature import FUNCTION_READ_HINT, FUNCTION_READS, WATCHED_OPS, host_read_of_op, op_event

# on_host_read(what, hint): the device decides whether it is a violation, raises or warns.
HostReadHandler = Callable[[str, str], None]


class OpTape(TorchDispatchMode):
    """Passes every operation to ``on_event`` and every host read to ``on_host_read``.

    Operations run by code in ``host_code`` are host-side bookkeeping beside the graph:
    they run unrecorded and unchecked.
    """

    def __init__(
        self, on_event: Callable[[tuple], None], on_host_read: HostReadHandler, host_code: CodeScope = CodeScope()
    ):
        super().__init__()
        self.on_event = on_event
        self.on_host_read = on_host_read
        self.host_code = host_code
        # > 0 while a host read already reported at the Tensor-method level runs.
        self.reads_reported = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if kwargs is None:
            kwargs = {}
        if self.host_code and called_through(self.host_code):
            return func(*args, **kwargs)
        if func in WATCHED_OPS and not self.reads_reported:
            found = host_read_of_op(func, args, kwargs)
            if found is not None:
                self.on_host_read(*found)
        out = func(*args, **kwargs)
        self.on_event(op_event(func, args, kwargs, out))
        return out


class HostReadGuard(TorchFunctionMode):
    """Reports the Tensor methods that hand a value to Python; everything else passes."""

    def __init__(self, tape: OpTape):
        super().__init__()
        self.tape = tape

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if kwargs is None:
            kwargs = {}
        what = FUNCTION_READS.get(func)
        if what is None:
            return func(*args, **kwargs)
        self.tape.on_host_read(what, FUNCTION_READ_HINT)
        self.tape.reads_reported += 1
        try:
            return func(*args, **kwargs)
        finally:
            self.tape.reads_reported -= 1
