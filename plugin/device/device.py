"""The simulated static-graph device: capture step 1, verify later steps, then run fast.

A ``Device`` watches a training step the way a wafer-scale engine's compiler would: the
first step is captured (its operations with their shapes, dtypes and devices, the
optimizer state, the inputs), the next ``verify_steps`` steps (and every
``verify_every``-th step after) are checked against it, and each break of the contract
is a typed error naming the user's line. Between checked steps nothing is installed, so
an unchecked step costs what the plain step costs. A step given as a function can then
run compiled (``compile=True``) or replayed from a CUDA graph (``replay="cuda_graph"``).

It knows nothing of Lightning or Accelerate; they drive it through ``begin_step`` /
``end_step`` / ``abort_step`` as a plain loop drives it through ``with device.step():``
or ``device.wrap(step_fn)``.
"""
from __future__ import annotations

import contextlib
import functools
import sys
import time
import warnings
from collections import Counter, defaultdict
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Union

import torch

from .errors import (
    GraphChangeError,
    HostHyperparameterError,
    HostSyncError,
    LazyOptimizerStateError,
    ShapeChangeError,
    StaticGraphViolation,
    StaticGraphWarning,
)
from .graph import Graph, GraphRecorder, GraphVerifier, lazy_spans
from .hyperparameters import GroupValues, host_changes, read_groups
from .libraries import library_call
from .location import CodeScope, Location, called_through, code_scope, user_location
from .optimizer_state import StateSnapshot, parameter_names, state_bytes
from .replay import CompiledStep, CudaGraphStep
from .report import DeviceReport
from .step_function import StepFunction
from .signature import OPTIMIZER_STEP, OPTIMIZER_STEP_DONE, format_signature, input_paths, inputs_key
from .tape import HostReadGuard, OpTape

CHECK_MODES = ("strict", "warn", "off")
REPLAYS = ("eager", "cuda_graph")
#: What decides how the next step is checked and what it is compared with (``extra_steps``).
_STEP_BOOKKEEPING = (
    "_completed", "_verified", "_inputs_compared", "_graphs_not_compared", "_graph", "_captured_at",
    "_capture_seconds", "_spans", "_inputs", "_state", "_groups",
)

_LAZY_STATE_HINT = (
    "Optimizer state must exist from the first step on: the hardware allocates it once, when "
    "the graph is compiled. Create it all before or during the first step (wse.optim "
    "optimizers do: optimizer.preinitialize()) and update it in place (buf.mul_(beta), not "
    "state['buf'] = buf * beta)."
)
_HYPERPARAMETER_HINT = (
    "A compiled step reads a Python number as a constant: it is baked into the graph (the "
    "schedule silently stops) or the step is compiled again for every new value. Make it a "
    "tensor updated in place: use a wse.optim scheduler and call "
    "scheduler.enable_tensor_values() (torch.optim.lr_scheduler schedulers write Python floats)."
)
_SHAPE_HINT = (
    "A compiled graph has fixed input shapes. The last batch of an epoch is usually the short "
    "one: use DataLoader(..., drop_last=True), or pad every batch to the same shape (and mask "
    "the padding)."
)


def _as_list(value, name: str) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler)) or hasattr(value, "step"):
        return [value]
    try:
        return list(value)
    except TypeError:
        what = "an optimizer" if name == "optimizers" else "a scheduler"
        raise TypeError(
            f"Device: `{name}` must be {what} or a list of them, got a value of type {type(value).__name__}."
        ) from None


def _unwrap_optimizer(optimizer, index: int) -> torch.optim.Optimizer:
    """The torch optimizer inside a Lightning or Accelerate wrapper."""
    inner = optimizer
    for _ in range(8):
        wrapped = getattr(inner, "optimizer", None)
        if isinstance(wrapped, torch.optim.Optimizer) and wrapped is not inner:
            inner = wrapped
        else:
            break
    if not isinstance(inner, torch.optim.Optimizer):
        raise TypeError(
            f"Device: optimizers[{index}] is a {type(optimizer).__name__}, not a torch.optim.Optimizer "
            f"(or a wrapper of one with an `.optimizer` attribute). Pass the optimizer the step updates."
        )
    return inner


class _CheckedStep:
    """The bookkeeping of one checked step (the capture step or a verified one)."""

    def __init__(self, number: int, capture: bool, location: Optional[Location]):
        self.number = number
        self.capture = capture
        self.location = location
        self.started = time.perf_counter()
        self.recorder: Optional[GraphRecorder] = GraphRecorder() if capture else None
        self.verifier: Optional[GraphVerifier] = None
        self.tape: Optional[OpTape] = None
        self.guard: Optional[HostReadGuard] = None
        self.handles: list = []
        self.optimizer_calls: Dict[int, Optional[Location]] = {}
        self.values_read: Dict[int, GroupValues] = {}
        self.state_before: List[StateSnapshot] = []
        self.lazy_starts: Dict[int, int] = {}
        self.factories: list = []
        self.installed = False
        # The optimizer whose step() is running, and a graph change found inside it: a
        # change there is most often lazy state, reported as such at the step's end.
        self.optimizer_open: Optional[int] = None
        self.pending_mismatch = None
        # How deep in its own step() each optimizer is: a subclass whose step() calls
        # super().step() runs torch's step hooks twice, once per hooked level.
        self.step_depth: Dict[int, int] = {}


class _FirstStateEntry:
    """Stands in for ``optimizer.state.default_factory`` during the capture step.

    torch.optim optimizers create a parameter's state on its first ``self.state[p]``; this
    notes at which event that happened, so the graph check knows where lazy
    initialisation began.
    """

    def __init__(self, run: _CheckedStep, index: int, factory):
        self.run, self.index, self.factory = run, index, factory

    def __call__(self):
        self.run.lazy_starts.setdefault(self.index, len(self.run.recorder))
        return self.factory()


class Device:
    """A simulated static-graph device for one model, its optimizers and schedulers.

    Args:
        model: the ``torch.nn.Module`` trained (names parameters in messages, sizes the
            report). Optional.
        optimizers: one optimizer or a list; Lightning's and Accelerate's wrappers are
            unwrapped. Their state and param groups are checked.
        schedulers: the schedulers stepped inside the step. With ``compile=True`` or
            ``replay="cuda_graph"``, wse schedulers are switched to tensor values.
        check: ``"strict"`` raises each violation, ``"warn"`` warns once per kind and goes
            on, ``"off"`` checks nothing and installs nothing.
        verify_steps: how many steps after the captured one are verified.
        capture_step: the step captured (1 unless a runtime reorganises itself during its
            first steps: DistributedDataParallel re-buckets the gradients after its first
            iteration). Earlier steps run unchecked.
        verify_every: also verify every step whose number is a multiple of this.
        compile: run the step function of ``wrap()`` through ``torch.compile`` once verified.
        compile_backend: the ``torch.compile`` backend.
        replay: ``"eager"`` (or None) or ``"cuda_graph"`` (capture the verified step in a
            CUDA graph and replay it; needs CUDA).
        cuda_graph_warmup: steps run on a side stream before the CUDA graph is captured.
        allow_host_reads_in: modules whose own host reads are not violations. torch.optim
            reads its host-side step counter in eager mode and does not when compiled.
        host_code: modules, or single functions (``"package.module:Class.method"``), whose
            work inside the step is host-side bookkeeping beside the graph, as a step
            closure would do it (a framework's logging of step values, e.g.
            ``"lightning.pytorch.core.module:LightningModule.log"``): their operations are
            left out of the graph and their host reads are allowed. Costs a stack walk per
            operation in checked steps.

    A violation is located at the user's line; when torch.optim, torchmetrics, torch.nn or
    Lightning did it inside that call, the error's ``library`` names that library's line
    and the fix. After a run, ``summary()`` says in one line what was checked and found,
    and ``report()`` gives the full account, including what was not checked.
    """

    def __init__(
        self,
        model: Optional[torch.nn.Module] = None,
        optimizers=(),
        schedulers=(),
        *,
        check: str = "strict",
        verify_steps: int = 3,
        verify_every: Optional[int] = None,
        capture_step: int = 1,
        compile: bool = False,
        compile_backend: Union[str, Callable] = "inductor",
        replay: Optional[str] = "eager",
        cuda_graph_warmup: int = 3,
        allow_host_reads_in: Iterable[str] = ("torch.optim",),
        host_code: Iterable[str] = (),
    ):
        if model is not None and not isinstance(model, torch.nn.Module):
            raise TypeError(f"Device: `model` must be a torch.nn.Module or None, got {type(model).__name__}.")
        if check not in CHECK_MODES:
            raise ValueError(
                f"Device: `check` must be one of {CHECK_MODES}, got {check!r}: 'strict' raises each violation, "
                f"'warn' warns once per kind and goes on, 'off' checks nothing."
            )
        for name, value, least in (
            ("verify_steps", verify_steps, 0),
            ("capture_step", capture_step, 1),
            ("cuda_graph_warmup", cuda_graph_warmup, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"Device: `{name}` must be an integer >= {least}, got {value!r}.")
        if verify_every is not None and (isinstance(verify_every, bool) or not isinstance(verify_every, int) or verify_every < 1):
            raise ValueError(f"Device: `verify_every` must be None or an integer >= 1, got {verify_every!r}.")
        if not isinstance(compile, bool):
            raise TypeError(f"Device: `compile` must be True or False, got {compile!r}.")
        if replay is None:
            replay = "eager"
        if replay not in REPLAYS:
            raise ValueError(f"Device: `replay` must be one of {REPLAYS} (None means 'eager'), got {replay!r}.")
        self.model = model
        self.optimizers: List[torch.optim.Optimizer] = [
            _unwrap_optimizer(optimizer, i) for i, optimizer in enumerate(_as_list(optimizers, "optimizers"))
        ]
        self.schedulers = _as_list(schedulers, "schedulers")
        for index, scheduler in enumerate(self.schedulers):
            if not callable(getattr(scheduler, "step", None)):
                raise TypeError(
                    f"Device: schedulers[{index}] is a {type(scheduler).__name__}, which has no step() method; pass "
                    f"the schedulers stepped inside the training step (LR or weight-decay schedulers), or none."
                )
        self.check = check
        self.verify_steps = verify_steps
        self.verify_every = verify_every
        self.capture_step = capture_step
        self.compile = compile
        self.compile_backend = compile_backend
        self.replay = replay
        self.cuda_graph_warmup = cuda_graph_warmup
        self._host_code = _resolve_code("host_code", host_code)
        self._allowed_reads = _resolve_code("allow_host_reads_in", allow_host_reads_in) + self._host_code
        self._allowed_names = _short_names(allow_host_reads_in) + _short_names(host_code)
        if replay == "cuda_graph":
            self._require_cuda()

        self._completed = 0
        self._in_step = False
        self._run: Optional[_CheckedStep] = None
        self._graph: Optional[Graph] = None
        self._captured_at: Optional[int] = None
        self._spans: Dict[int, tuple] = {}
        self._inputs = None
        self._state: Optional[List[StateSnapshot]] = None
        self._groups: Optional[List[GroupValues]] = None
        self._violations: Counter = Counter()
        self._warned: set = set()
        self._verified = 0
        self._inputs_compared = 0
        self._graphs_not_compared = 0  # verified steps whose inputs differed (check="warn")
        self._capture_seconds: Optional[float] = None
        self._closures: list = []
        self._compiled: List[CompiledStep] = []
        self._graphed: List[CudaGraphStep] = []
        self._names = parameter_names(model, self.optimizers)
        if compile or replay == "cuda_graph":
            self._schedule_as_tensors()

    # -- configuration --------------------------------------------------------------------

    def _require_cuda(self) -> None:
        if not torch.cuda.is_available():
            raise RuntimeError(
                "Device(replay='cuda_graph') needs a CUDA device and this machine has none; use "
                "replay='eager' (optionally with compile=True)."
            )
        params = [p for o in self.optimizers for g in o.param_groups for p in g["params"]]
        if self.model is not None:
            params += list(self.model.parameters())
        elsewhere = sorted({str(p.device) for p in params if p.device.type != "cuda"})
        if elsewhere:
            raise ValueError(
                f"Device(replay='cuda_graph'): parameters are on {elsewhere}; move the model to the "
                f"GPU (model.cuda()) before creating its optimizer and the device."
            )

    def _schedule_as_tensors(self) -> None:
        """A compiled or replayed step reads schedule values as tensors, compiled once."""
        for scheduler in self.schedulers:
            enable = getattr(scheduler, "enable_tensor_values", None)
            if callable(enable) and not getattr(scheduler, "uses_tensor_values", False):
                enable()

    # -- the step, as a context, as begin/end, as a function -----------------------------------

    @property
    def step_count(self) -> int:
        """Steps completed so far."""
        return self._completed

    @property
    def in_step(self) -> bool:
        return self._in_step

    @property
    def graph(self) -> Optional[Graph]:
        """The captured graph (the one later steps are verified against), once captured."""
        return self._graph

    def next_step_checked(self) -> bool:
        """Whether the next step will be captured or verified (runs eagerly, instrumented)."""
        return self._is_checked(self._completed + 1)

    def _is_checked(self, number: int) -> bool:
        if self.check == "off":
            return False
        if self._graph is None:
            return number >= self.capture_step
        if number - self._captured_at <= self.verify_steps:
            return True
        return self.verify_every is not None and number % self.verify_every == 0

    @contextlib.contextmanager
    def step(self, *inputs, **named_inputs):
        """One training step: ``with device.step(batch): ...`` (yields the step number).

        ``inputs`` are the step's inputs (any nesting of tensors); their shapes are part of
        the captured graph. Values read after the block are read outside the step.
        """
        self.begin_step(*inputs, **named_inputs)
        try:
            yield self._completed + 1
        except BaseException:
            self.abort_step()
            raise
        self.end_step()

    def begin_step(self, *inputs, **named_inputs) -> bool:
        """Start a step; returns whether it is checked (captured or verified)."""
        if self._in_step:
            raise RuntimeError(
                f"Device.begin_step(): step {self._completed + 1} is still in progress; call "
                f"end_step() (or abort_step() after an error) before starting another."
            )
        number = self._completed + 1
        if not self._is_checked(number):
            if self.check != "off" and self._inputs is not None:
                self._inputs_compared += 1
                self._check_inputs(number, inputs, named_inputs)
            self._in_step = True
            return False
        run = _CheckedStep(number, capture=self._graph is None, location=user_location())
        self._in_step = True
        self._run = run
        try:
            if run.capture:
                self._inputs = None
            graph_checked = self._check_inputs(number, inputs, named_inputs, run.location)
            if not graph_checked:
                self._graphs_not_compared += 1
            if not run.capture:
                for index in range(len(self.optimizers)):
                    self._compare_state(run, index, f"code run between steps {self._completed} and {number}", run.location)
            self._install(run, graph_checked)
        except BaseException:
            self._uninstall(run)
            self._in_step = False
            self._run = None
            raise
        return True

    def end_step(self) -> None:
        """Finish the step: complete its checks, then run the step closures it queued."""
        if not self._in_step:
            raise RuntimeError("Device.end_step() without a step in progress: call begin_step() first.")
        run = self._run
        closures, self._closures = self._closures, []
        try:
            if run is not None:
                self._uninstall(run)
                self._finish(run)
        finally:
            self._in_step = False
            self._run = None
            self._completed += 1
        for closure, args, kwargs in closures:
            closure(*args, **kwargs)

    def abort_step(self) -> None:
        """Drop the step in progress after an error; nothing of it is kept (a failed capture is redone)."""
        if not self._in_step:
            return
        if self._run is not None:
            self._uninstall(self._run)
        self._in_step = False
        self._run = None
        self._closures = []

    @contextlib.contextmanager
    def extra_steps(self):
        """Steps inside the block are checked as usual, then the device forgets them.

        For training that looks ahead and then goes back (a decay branch forked from a
        run): each step in the block is the step of its number, captured, verified
        against the same graph or run fast as that step would be, and its violations are
        counted and raised or warned as any other. On exit the step count, the captured
        graph and inputs, and the optimizer state and hyperparameters later steps are
        compared with go back to what they were on entry, so the run's next step is
        checked as if the extra steps never ran. A step left open by an error is
        dropped. The model and optimizer values are the caller's to put back.
        """
        if self._in_step:
            raise RuntimeError(
                f"Device.extra_steps(): step {self._completed + 1} is in progress; enter the block between steps."
            )
        kept = {name: getattr(self, name) for name in _STEP_BOOKKEEPING}
        kept["_state"] = None if self._state is None else list(self._state)  # compared entries are replaced
        try:
            yield
        finally:
            self.abort_step()
            for name, value in kept.items():
                setattr(self, name, value)

    def wrap(self, fn: Callable) -> "StepFunction":
        """The step as a function: checked while verifying, then compiled or replayed.

        ``fn(*inputs)`` runs forward, backward, optimizer step and scheduler step and
        returns what the caller wants to read (a loss, metrics); those are read after the
        step, which is how values leave a compiled graph.
        """
        if not callable(fn):
            raise TypeError(f"Device.wrap() needs a callable step function, got {type(fn).__name__}.")
        return StepFunction(self, fn)

    def compiled(self, fn: Callable) -> CompiledStep:
        """``fn`` through ``torch.compile`` with the device's backend, counted in the report.

        For integrations that compile parts of a step they drive with ``begin_step`` /
        ``end_step`` (``wrap`` does this for a whole step function).
        """
        compiled = CompiledStep(fn, self.compile_backend)
        self._compiled.append(compiled)
        return compiled

    def cuda_graphed(self, fn: Callable) -> CudaGraphStep:
        """``fn`` captured in a CUDA graph after ``cuda_graph_warmup`` calls, then replayed.

        Python code in ``fn`` runs only while capturing; the step counters of the
        device's schedulers are advanced after each replay.
        """
        if not torch.cuda.is_available():
            self._require_cuda()
        graphed = CudaGraphStep(fn, self.cuda_graph_warmup, self.schedulers)
        self._graphed.append(graphed)
        return graphed

    def check_recompilation(self) -> None:
        """Warn once if a compiled function was compiled again since it was first compiled."""
        if any(compiled.recompilations for compiled in self._compiled):
            self.warn_once(
                "recompile",
                RuntimeWarning(
                    f"wse device: the compiled step was compiled again at step {self._completed}: something in "
                    f"it changes from call to call that verification did not see (a Python number such as a "
                    f"counter or a hyperparameter, a new input shape), and each new value costs a compilation. "
                    f"Make that value a tensor; run with TORCH_LOGS=recompiles to see what torch guards on."
                ),
            )

    def step_closure(self, fn: Callable) -> Callable:
        """Decorate a function so that, called inside a step, it runs after the step ends.

        Its tensor arguments are read then, outside the graph, as the hardware's step
        closures do; called outside a step it runs at once.
        """

        @functools.wraps(fn)
        def deferred(*args, **kwargs):
            if not self._in_step:
                return fn(*args, **kwargs)
            if self.replay == "cuda_graph" and torch.cuda.is_available() and torch.cuda.is_current_stream_capturing():
                raise RuntimeError(
                    f"step closure {fn.__name__!r} called while the step is captured in a CUDA graph: a "
                    f"replay would not call it again. Return the tensors from the step function instead."
                )
            self._closures.append((fn, args, kwargs))
            return None

        return deferred

    # -- installing and removing the instruments --------------------------------------------

    def _install(self, run: _CheckedStep, graph_checked: bool) -> None:
        if run.capture:
            run.state_before = [StateSnapshot(optimizer) for optimizer in self.optimizers]
            for index, optimizer in enumerate(self.optimizers):
                state = optimizer.state
                if isinstance(state, defaultdict) and state.default_factory is not None:
                    run.factories.append((state, state.default_factory))
                    state.default_factory = _FirstStateEntry(run, index, state.default_factory)
            on_event = run.recorder.on_event
        elif graph_checked:
            run.verifier = GraphVerifier(self._graph, run.number, self._spans)
            on_event = functools.partial(self._verify_event, run)
        else:
            on_event = _ignore
        for index, optimizer in enumerate(self.optimizers):
            run.handles.append(optimizer.register_step_pre_hook(functools.partial(self._before_optimizer_step, index)))
            run.handles.append(optimizer.register_step_post_hook(functools.partial(self._after_optimizer_step, index)))
        run.tape = OpTape(on_event, self._on_host_read, self._host_code)
        run.guard = HostReadGuard(run.tape)
        run.guard.__enter__()
        run.tape.__enter__()
        run.installed = True

    def _uninstall(self, run: _CheckedStep) -> None:
        if run.installed:
            run.installed = False
            run.tape.__exit__(None, None, None)
            run.guard.__exit__(None, None, None)
        for handle in run.handles:
            handle.remove()
        run.handles = []
        for state, factory in run.factories:
            state.default_factory = factory
        run.factories = []

    # -- the checks -------------------------------------------------------------------------

    def _check_inputs(self, number: int, inputs: tuple, named: dict, location=None) -> bool:
        """Capture or compare the inputs; False if they differ (the graph cannot be compared)."""
        tree = _inputs_tree(inputs, named)
        key = inputs_key(tree)
        if self._inputs is None:
            self._inputs = key
            return True
        if key == self._inputs:
            return True
        (spec, leaves), (captured_spec, captured) = key, self._inputs
        if spec != captured_spec:
            detail = f"  their structure is {spec}\n  the captured step had {captured_spec}"
        else:
            detail = "\n".join(
                f"  {_input_name(path, inputs, named)}: {format_signature(now)} now, {format_signature(then)} captured"
                for path, now, then in zip(input_paths(tree), leaves, captured)
                if now != then
            )
        location = location or user_location()
        self._violate(
            ShapeChangeError(
                f"step {number}: the inputs differ from those of the captured step {self._captured_at}:\n"
                f"{detail}\n  at {location}\n{_SHAPE_HINT}",
                step=number,
                location=location,
            )
        )
        return False

    def _verify_event(self, run: _CheckedStep, event: tuple) -> None:
        mismatch = run.verifier.on_event(event)
        if mismatch is None:
            return
        if mismatch.branch is not None:
            # A library that branched on a value it read changed the graph itself. Any other
            # change merely shows up inside a library (a module run in eval mode from step 3
            # differs in torch.nn's code) and is the user's to find.
            mismatch.library = library_call(sys._getframe(1), self._open_optimizer(run))
        if run.optimizer_open is not None:
            run.pending_mismatch = mismatch
        else:
            self._graph_changed(mismatch)

    def _graph_changed(self, mismatch) -> None:
        self._violate(
            GraphChangeError(
                mismatch.message(self._captured_at), step=mismatch.step, location=mismatch.location, library=mismatch.library
            )
        )

    def _open_optimizer(self, run: _CheckedStep) -> Optional[str]:
        """The class name of the optimizer whose step() is running, if one is."""
        if run.optimizer_open is None:
            return None
        return type(self.optimizers[run.optimizer_open]).__name__

    def _on_host_read(self, what: str, hint: str) -> None:
        if called_through(self._allowed_reads):
            return
        run = self._run
        frame = sys._getframe(1)
        location = user_location(frame)
        library = library_call(frame, self._open_optimizer(run))
        if library is None:
            message = f"step {run.number} reads a step value on the host: {what}\n  at {location}\n{hint}"
        else:
            called = f"\n  called from {location}" if location is not None else ""
            message = (
                f"step {run.number}: {library.library} reads a step value on the host, not your code: "
                f"{what}\n  {library}{called}\n{library.advice}"
            )
        self._violate(HostSyncError(message, step=run.number, location=location, library=library))

    def _before_optimizer_step(self, index: int, optimizer, args, kwargs) -> None:
        run = self._run
        if run is None:
            return
        depth = run.step_depth.get(index, 0)
        run.step_depth[index] = depth + 1
        if depth:  # super().step() of the step already entered: the outer call is the one
            return
        run.tape.on_event((OPTIMIZER_STEP, index))
        run.optimizer_open = index
        location = user_location()
        run.optimizer_calls[index] = location
        values = read_groups(optimizer)
        run.values_read[index] = values
        if self._groups is not None:
            self._report_hyperparameters(run, index, host_changes(self._groups[index], values), "since the previous checked step")

    def _after_optimizer_step(self, index: int, optimizer, args, kwargs) -> None:
        run = self._run
        if run is None:
            return
        depth = run.step_depth.get(index, 1) - 1
        run.step_depth[index] = depth
        if depth:
            return
        run.tape.on_event((OPTIMIZER_STEP_DONE, index))
        run.optimizer_open = None
        if run.capture or self._state is None:
            return
        location = run.optimizer_calls.get(index)
        mismatch, run.pending_mismatch = run.pending_mismatch, None
        # State created late runs operations the captured step did not: the first of them
        # is the line that created it (when that is the user's code, e.g. their optimizer).
        created_at = mismatch.location if mismatch is not None and mismatch.location is not None else None
        self._compare_state(run, index, f"{type(optimizer).__name__}.step() at {location}", location, created_at)
        if mismatch is not None:
            self._graph_changed(mismatch)

    def _compare_state(
        self,
        run: _CheckedStep,
        index: int,
        culprit: str,
        location: Optional[Location],
        created_at: Optional[Location] = None,
    ) -> None:
        now = StateSnapshot(self.optimizers[index])
        changes = self._state[index].changes(now, self._names)
        if not changes:
            return
        self._state[index] = now  # each change is reported once
        listed = "\n".join(f"  - {line}" for line in changes[:8])
        more = f"\n  - ... and {len(changes) - 8} more" if len(changes) > 8 else ""
        where = f"\n  first new operation at {created_at}" if created_at is not None else ""
        self._violate(
            LazyOptimizerStateError(
                f"step {run.number}: {culprit} changed the optimizer state captured at step "
                f"{self._captured_at}:\n{listed}{more}{where}\n{_LAZY_STATE_HINT}",
                step=run.number,
                location=created_at or location,
            )
        )

    def _report_hyperparameters(self, run: _CheckedStep, index: int, changes, when: str) -> None:
        if not changes:
            return
        location = run.optimizer_calls.get(index)
        prefix = f"optimizers[{index}]." if len(self.optimizers) > 1 else ""
        listed = "\n".join(
            f"  {prefix}param_groups[{group}][{key!r}]: {old!r} -> {new!r}" for group, key, old, new in changes
        )
        writers = self._host_schedulers(index)
        by = ""
        if writers:
            them = "which writes" if len(writers) == 1 else "which write"
            by = f"\n  written by {', '.join(writers)}, {them} Python numbers{_replacements(writers)}"
        self._violate(
            HostHyperparameterError(
                f"step {run.number}: hyperparameters changed as Python values {when}:\n{listed}\n"
                f"  read by optimizer.step() at {location}{by}\n{_HYPERPARAMETER_HINT}",
                step=run.number,
                location=location,
            )
        )

    def _host_schedulers(self, index: int) -> List[str]:
        optimizer = self.optimizers[index]
        names = []
        for scheduler in self.schedulers:
            target = getattr(scheduler, "optimizer", None)
            while target is not None and not isinstance(target, torch.optim.Optimizer):
                target = getattr(target, "optimizer", None)
            if target is not None and _unwrap_optimizer(target, 0) is optimizer:
                if not getattr(scheduler, "uses_tensor_values", False):
                    names.append(type(scheduler).__name__)
        return names

    def _finish(self, run: _CheckedStep) -> None:
        end = user_location()
        if run.capture:
            self._graph = run.recorder.graph()
            self._captured_at = run.number
            self._capture_seconds = time.perf_counter() - run.started
            self._state = [StateSnapshot(optimizer) for optimizer in self.optimizers]
            starts = {}
            for index, (before, after) in enumerate(zip(run.state_before, self._state)):
                if before.created_any(after):
                    starts[index] = run.lazy_starts.get(index, _after_first_marker(self._graph, index))
            self._spans = lazy_spans(self._graph, {k: v for k, v in starts.items() if v is not None})
        else:
            self._verified += 1
            if run.pending_mismatch is not None:
                self._graph_changed(run.pending_mismatch)
            if run.verifier is not None:
                mismatch = run.verifier.finish(end)
                if mismatch is not None:
                    self._graph_changed(mismatch)
                adopted = run.verifier.adopted()
                if adopted is not None:
                    self._graph, self._spans = adopted, {}
            for index in range(len(self.optimizers)):
                self._compare_state(run, index, "code outside optimizer.step()", end)
        for index, optimizer in enumerate(self.optimizers):
            read = run.values_read.get(index)
            if read is not None:
                self._report_hyperparameters(
                    run, index, host_changes(read, read_groups(optimizer)), "after optimizer.step() read them"
                )
        self._groups = [read_groups(optimizer) for optimizer in self.optimizers]

    def report_violation(self, error: StaticGraphViolation, kind: Optional[str] = None) -> None:
        """Count a violation an integration found itself, then raise or warn it as the device's own.

        For the checks an integration makes beside the device's (a host-side scheduler
        found at setup, an accumulation cycle cut short by the end of an epoch): under
        ``check="strict"`` ``error`` is raised, under ``"warn"`` it is warned the first
        time its ``kind`` (default ``error.kind``) is seen; either way ``report()`` and
        ``summary()`` count it. Under ``"off"`` nothing is checked, so nothing is done.
        """
        if self.check == "off":
            return
        self._violations[error.kind] += 1
        if self.check == "strict":
            raise error
        self.warn_once(kind or error.kind, StaticGraphWarning(error))

    def _violate(self, error: StaticGraphViolation) -> None:
        self._violations[error.kind] += 1
        if self.check == "strict":
            raise error
        self.warn_once(error.kind, StaticGraphWarning(error))

    def warn_once(self, kind: str, warning: Warning) -> None:
        """Issue ``warning`` the first time ``kind`` happens on this device, never again."""
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(warning, stacklevel=3)

    # -- the report -------------------------------------------------------------------------

    def report(self) -> DeviceReport:
        """What was captured, verified and not checked; the graph, memory, cost and violations.

        ``report().format()`` is the full account (a few lines); ``summary()`` is one line.
        """
        compiled = [c for c in self._compiled if c.compile_seconds is not None]
        parts = []
        if self.compile:
            parts.append("compiled")
        if self.replay == "cuda_graph":
            parts.append("replayed from a CUDA graph")
        return DeviceReport(
            check=self.check,
            execution=" and ".join(parts) if parts else "eagerly",
            steps=self._completed,
            steps_verified=self._verified,
            graph_ops=self._graph.num_ops if self._graph is not None else 0,
            graph_fingerprint=self._graph.fingerprint if self._graph is not None else None,
            parameter_bytes=_parameter_bytes(self.model, self.optimizers),
            optimizer_state_bytes=state_bytes(self.optimizers),
            capture_seconds=self._capture_seconds,
            captured_step=self._captured_at,
            violations=dict(self._violations),
            compile_seconds=sum(c.compile_seconds for c in compiled) if compiled else None,
            compiled_graphs=sum(c.graphs for c in compiled) if compiled else None,
            recompilations=sum(c.recompilations for c in compiled),
            capture_at=self.capture_step,
            verify_every=self.verify_every,
            steps_inputs_compared=self._inputs_compared,
            steps_graph_not_compared=self._graphs_not_compared,
            reads_allowed_in=self._allowed_names,
        )

    def summary(self) -> str:
        """One line for the end of a run: the steps, what was checked, what was found.

        ``"wse device: 8 steps, step 1 captured and 3 verified against it: no violations"``,
        ``"wse device: 8 steps, checks off: nothing captured or verified"``, or the
        violations by kind. No trailing period, so a caller may append to it. The detail
        is in ``report().format()``.
        """
        return self.report().summary()

    def __repr__(self) -> str:
        return (
            f"Device(check={self.check!r}, steps={self._completed}, verified={self._verified}, "
            f"graph={self._graph!r}, compile={self.compile}, replay={self.replay!r})"
        )


def _resolve_code(option: str, names: Iterable[str]) -> CodeScope:
    if isinstance(names, str):
        names = (names,)
    scope, missing = code_scope(tuple(names))
    if missing:
        raise ValueError(
            f"Device: `{option}` names modules that are not installed: {list(missing)}. Name a module or "
            f"package ('package.module') or one function ('package.module:Class.method')."
        )
    return scope


def _replacements(writers: List[str]) -> str:
    """The wse.optim scheduler of the same name as each host-side scheduler that has one, for the message."""
    from ..optim import lr_scheduler

    same = [f"wse.optim.lr_scheduler.{name}" for name in writers if isinstance(getattr(lr_scheduler, name, None), type)]
    if not same:
        return ""
    return f" (the tensor-valued form: {', '.join(same)})"


def _short_names(names: Iterable[str]) -> tuple:
    """``"pkg.module:Class.method"`` as ``Class.method``, a module as its name, for the report."""
    if isinstance(names, str):
        names = (names,)
    return tuple(name.partition(":")[2] or name for name in names)


def _ignore(event) -> None:
    return None


def _inputs_tree(inputs: tuple, named: dict):
    if named:
        return (inputs, named)
    return inputs[0] if len(inputs) == 1 else inputs


def _input_name(path: str, inputs: tuple, named: dict) -> str:
    if len(inputs) == 1 and not named:
        return f"batch{path}" if path else "the batch"
    return f"inputs{path}"


def _after_first_marker(graph: Graph, index: int) -> Optional[int]:
    marker = (OPTIMIZER_STEP, index)
    for position, event in enumerate(graph.events):
        if event == marker:
            return position + 1
    return None


def _parameter_bytes(model, optimizers: Sequence[torch.optim.Optimizer]) -> int:
    if model is not None:
        params = list(model.parameters())
    else:
        params = [p for o in optimizers for g in o.param_groups for p in g["params"]]
    seen = set()
    total = 0
    for param in params:
        key = (param.untyped_storage().data_ptr(), param.device)
        if key not in seen:
            seen.add(key)
            total += param.untyped_storage().nbytes()
    return total
