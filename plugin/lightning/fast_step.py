"""The verified automatic-optimization step run fast: compiled pieces, a replayed update.

Lightning builds a new closure for every batch (``training_step``, ``zero_grad``,
``backward`` and the hooks between them), so the step cannot be handed to the device as
one function. Its two pieces of tensor work are, and they run fast once the device has
verified the step:

* ``training_step`` through ``torch.compile``: AOTAutograd compiles its backward with
  it, so Lightning's own ``loss.backward()`` runs the compiled backward. ``self.log`` and
  ``self.log_dict`` inside it are recorded, not run, and replayed right after it returns,
  as the hardware's step closures read values after the step: Lightning's logging is
  host-side Python that a graph cannot hold.
* the update, ``optimizer.step()`` followed by the optimizer's schedulers, compiled
  (``compile=True``) and/or captured once in a CUDA graph and replayed
  (``replay="cuda_graph"``). The schedules' values are tensors updated in place, so a
  changing learning rate is an input of the graph, not a reason to compile again.

Everything else -- Lightning's hooks and callbacks, zeroing the gradients, the precision
plugin, the closure's bookkeeping -- runs eagerly around them, exactly as in the checked
steps. For the update to run inside the precision plugin's ``optimizer.step(closure)``,
the optimizer's ``step`` is replaced, for the duration of one step only, by one that runs
the closure and then the fast update.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, List, Optional, Tuple

import torch

from ..device import Device
from .scheduling import SchedulerSteps


class DeferredLog:
    """Stands in for ``LightningModule.log`` / ``log_dict`` inside a compiled ``training_step``.

    Each call is recorded (torch.compile keeps the appends as side effects of the graph,
    the logged tensors become its outputs) and ``take()`` hands them over for replay.
    The list is empty whenever a compiled call starts, so it never changes a guard.
    """

    def __init__(self):
        self.calls: List[Tuple[str, tuple, dict]] = []

    def log(self, *args, **kwargs) -> None:
        self.calls.append(("log", args, kwargs))

    def log_dict(self, *args, **kwargs) -> None:
        self.calls.append(("log_dict", args, kwargs))

    def take(self) -> List[Tuple[str, tuple, dict]]:
        calls = list(self.calls)
        self.calls.clear()
        return calls


class FastStep:
    """The compiled ``training_step`` and the compiled or replayed update of one optimizer.

    Args:
        device: the device that verified the step; builds the compiled and CUDA-graph
            forms so that its report counts them.
        module: the LightningModule.
        optimizer: the (one) optimizer of automatic optimization.
        scheduler_steps: steps and counts the optimizer's schedulers.
        compile: compile ``training_step`` and the update.
        replay: capture the update in a CUDA graph and replay it (gradients are then
            zeroed in place rather than set to None, so the graph reads them at fixed
            addresses).
    """

    def __init__(
        self,
        device: Device,
        module: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler_steps: SchedulerSteps,
        compile: bool,
        replay: bool,
    ):
        self.module = module
        self.optimizer = optimizer
        self.scheduler_steps = scheduler_steps
        self.replay = replay
        self._log = DeferredLog()
        # Bound once: the same objects at every compiled call keep dynamo's guards stable.
        self._log_methods = {"log": self._log.log, "log_dict": self._log.log_dict}
        self._optimizer_step = type(optimizer).step
        self._schedulers = scheduler_steps.schedulers_of(optimizer)
        self._step_scheduler = module.lr_scheduler_step
        self._training_step: Callable = device.compiled(module.training_step) if compile else module.training_step
        update: Callable = self._update
        if compile:
            update = device.compiled(update)
        if replay:
            update = device.cuda_graphed(update)
        self._fast_update = update

    def _update(self) -> None:
        """One optimizer step and its schedulers' steps: the function compiled or replayed."""
        self._optimizer_step(self.optimizer)
        for scheduler in self._schedulers:
            self._step_scheduler(scheduler, None)

    def training_step(self, *args: Any, **kwargs: Any) -> Any:
        """The LightningModule's ``training_step``, compiled, its logging replayed after it."""
        module_attributes = vars(self.module)
        # A caller's own stand-in (a decay branch drops its logging) is put back, and replays the calls.
        shadowed = {name: module_attributes[name] for name in self._log_methods if name in module_attributes}
        module_attributes.update(self._log_methods)
        try:
            output = self._training_step(*args, **kwargs)
        finally:
            for name in self._log_methods:
                module_attributes.pop(name, None)
            module_attributes.update(shadowed)
            calls = self._log.take()
        for method, call_args, call_kwargs in calls:
            getattr(self.module, method)(*call_args, **call_kwargs)
        return output

    @contextlib.contextmanager
    def installed(self):
        """For one step: ``optimizer.step(closure)`` runs the closure, then the fast update."""
        optimizer = self.optimizer
        optimizer.step = self._step
        if self.replay:
            optimizer.zero_grad = self._zero_grad_in_place
        try:
            yield
        finally:
            vars(optimizer).pop("step", None)
            vars(optimizer).pop("zero_grad", None)

    def _step(self, closure: Optional[Callable[[], Any]] = None, **kwargs: Any) -> Any:
        if kwargs:
            raise TypeError(
                f"WSEStrategy(compile/replay): optimizer.step() was given {sorted(kwargs)}; the compiled "
                f"update takes no arguments. Pass them to the optimizer's constructor instead."
            )
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.scheduler_steps.before_step(self.optimizer)
        self._fast_update()
        self.scheduler_steps.after_step(self.optimizer)
        return loss

    def _zero_grad_in_place(self, set_to_none: bool = True) -> None:
        # A replayed update reads the gradients where they were when it was captured.
        type(self.optimizer).zero_grad(self.optimizer, set_to_none=False)
