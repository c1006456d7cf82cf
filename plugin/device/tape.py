"""The two torch modes installed during a checked step, and only then.

``OpTape`` (a TorchDispatchMode) sees every aten operation the step runs, backward
included, because autograd dispatches through it: it hands each one's signature to the
graph check and flags the operations that read the host (``_local_scalar_dense``, where
every conversion to a Python number ends, data-dependent shapes, device-to-host
copies). ``HostReadGuard`` (a TorchFunctionMode) sees the few functions that read a
tensor's memory without an aten operation (``.tolist()``, ``.numpy()``, printing,
``torch.tensor([t1, t2])``). Both report to one handler; ``host_reads`` lists every
path and which mode sees it.
"""
from __future__ import annotations

from typing import Callable

from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from .location import CodeScope, called_through
from .host_reads import WATCHED_FUNCTIONS, WATCHED_OPS, host_read_of_function, host_read_of_op
from .signature import op_event

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
    """Reports the functions that read a tensor's memory around the dispatcher; everything else passes."""

    def __init__(self, tape: OpTape):
        super().__init__()
        self.tape = tape

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if kwargs is None:
            kwargs = {}
        if func not in WATCHED_FUNCTIONS:
            return func(*args, **kwargs)
        found = host_read_of_function(func, args, kwargs)
        if found is None:
            return func(*args, **kwargs)
        self.tape.on_host_read(*found)
        self.tape.reads_reported += 1
        try:
            return func(*args, **kwargs)
        finally:
            self.tape.reads_reported -= 1
