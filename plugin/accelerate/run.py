"""One prepared Accelerate run: its updates, its schedulers' steps and its device steps.

An Accelerate loop has no training-step hook, so the step boundary is found from what
the loop already does:

* a device step begins at the first forward pass of a prepared model in training mode
  with gradients enabled, when no step is open (evaluation under ``torch.no_grad()`` or
  ``model.eval()`` never starts one). Its inputs, whose shapes the device checks, are
  those of that forward pass;
* it ends when the optimizer has been called with synchronised gradients
  (``accelerator.sync_gradients``): the last micro-batch of an ``accelerator.accumulate``
  cycle, or every batch without accumulation. The micro-batches of one cycle are one
  device step, as one update is one step of the hardware;
* right after a real update of an optimizer (its step hook, which Accelerate's wrapper
  runs only on synchronised gradients and the grad scaler only when it did not skip),
  wse steps that optimizer's schedulers, inside the step, once per process.

Values read after ``optimizer.step()`` (``loss.item()``, ``accelerator.print``) are read
outside the step, as the hardware's step closures read them.
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import weakref
from typing import Any, Dict, List

import torch

from ..device import Device
from ..rules import schedule_in_graph
from .errors import SchedulerStepError
from .loading import load_outside_the_step
from .options import enforce

logger = logging.getLogger(__name__)

#: DistributedDataParallel's own Python code: its bucket bookkeeping is the runtime's, not
#: the model's graph. DDP re-buckets the gradients after its first iteration, so with
#: several processes the device captures step 2 (as ``Trainer(strategy="wse")`` does).
DDP_HOST_CODE = ("torch.nn.parallel.distributed",)
DDP_CAPTURE_STEP = 2
#: Host reads that are the runtime's, not the step's: torch.optim's eager step counter, and
#: the grad scaler's check for infinite gradients (dynamic loss scaling is in-graph on a device).
RUNTIME_HOST_READS = ("torch.optim", "torch.amp")


class AccelerateRun:
    """What ``wse.accelerate.prepare`` set up on one ``Accelerator``; ``wse.accelerate.state(accelerator)``.

    Attributes:
        global_step: real optimizer updates so far (of the first prepared optimizer),
            restored by ``accelerator.load_state`` from the wse sidecar.
        device: the static-graph device (``device.report()``).
        schedulers: the user's schedulers, stepped once per update of their optimizer.
    """

    def __init__(
        self,
        accelerator,
        models: List[torch.nn.Module],
        optimizers: list,
        loaders: list,
        schedulers: list,
        *,
        strict: str,
        device_settings: Dict[str, Any],
        optimizer_setup: List[str],
        log_hyperparameters: bool = False,
    ):
        self.accelerator = accelerator
        self.models = models
        self.optimizers = optimizers  # Accelerate's wrappers, as the user steps them
        self.inner_optimizers = [getattr(o, "optimizer", o) for o in optimizers]
        self.loaders = loaders
        self.schedulers = schedulers
        self.strict = strict
        self.device_settings = dict(device_settings)
        self.optimizer_setup = optimizer_setup
        self.global_step = 0
        self.finished = False
        self._by_optimizer: Dict[int, list] = {}
        for scheduler in schedulers:
            target = getattr(scheduler.optimizer, "optimizer", scheduler.optimizer)
            self._by_optimizer.setdefault(id(target), []).append(scheduler)
        self._updated: Dict[int, bool] = {}
        self._stepped_in_step: set = set()
        self._handles: list = []
        self._snapshot = None
        self._checked = False  # whether the open device step is captured or verified
        self._began_step = False  # whether wse opened it (a user's `with device.step():` is theirs to close)
        # optimizer.step() calls of the current accumulation cycle, and the most seen in one.
        self._micro_batches = 0
        self._full_cycle = False
        self._update_to_log = False
        # Each scheduler's step count right after wse last stepped it (see _check_counts).
        self._counts: Dict[int, int] = {}

        multiprocess = accelerator.num_processes > 1
        settings = self.device_settings
        # The names of the schedules computed in the step (the user may have switched some
        # already), and of those left host-side, for the setup line.
        host_side = schedulers
        if settings["check"] != "off" or settings["compile"]:
            host_side = schedule_in_graph(schedulers, accelerator.device)[1]
        self.schedules = (
            [type(s).__name__ for s in schedulers if not any(s is h for h in host_side)],
            [type(s).__name__ for s in host_side],
        )
        unwrapped = [accelerator.unwrap_model(model) for model in models]
        self.device = Device(
            unwrapped[0] if len(unwrapped) == 1 else torch.nn.ModuleList(unwrapped),
            self.inner_optimizers,
            schedulers,
            check=settings["check"],
            verify_steps=settings["verify_steps"],
            verify_every=settings["verify_every"],
            capture_step=DDP_CAPTURE_STEP if multiprocess else 1,
            compile=settings["compile"],
            compile_backend=settings["compile_backend"],
            allow_host_reads_in=RUNTIME_HOST_READS,
            host_code=DDP_HOST_CODE if multiprocess else (),
        )
        self.monitor = None
        if log_hyperparameters:
            from ..monitoring import ParamGroupMonitor

            self.monitor = ParamGroupMonitor(self.inner_optimizers, log_momentum=True, log_weight_decay=True)
        self._remember_counts(schedulers)
        self.fast = None
        if settings["compile"]:
            from .fast_step import FastStep

            self.fast = FastStep(self)
        self._install()

    # -- hooks --------------------------------------------------------------------------

    def _install(self) -> None:
        for model in self.models:
            self._handles.append(model.register_forward_pre_hook(self._before_forward, with_kwargs=True))
        for index, inner in enumerate(self.inner_optimizers):
            self._handles.append(inner.register_step_post_hook(functools.partial(self._after_update, index)))
        for index, optimizer in enumerate(self.optimizers):
            optimizer.step = functools.partial(self._optimizer_step, index, type(optimizer).step.__get__(optimizer))
        for loader in self.loaders:
            load_outside_the_step(loader, self)
        skip_first_batches = self.accelerator.skip_first_batches
        self.accelerator.skip_first_batches = functools.partial(self._skip_first_batches, skip_first_batches)
        end_training = self.accelerator.end_training
        self.accelerator.end_training = functools.partial(self._end_training, end_training)
        atexit.register(_finish_at_exit, weakref.ref(self))

    def remove(self) -> None:
        """Take the hooks off the models, optimizers and accelerator (the device's report stays).

        A step left open by an error (a violation raised at the user's line) is dropped.
        """
        self.device.abort_step()
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for optimizer in self.optimizers:
            vars(optimizer).pop("step", None)
        vars(self.accelerator).pop("end_training", None)
        vars(self.accelerator).pop("skip_first_batches", None)
        if self.fast is not None:
            self.fast.remove()

    def _skip_first_batches(self, skip_first_batches, dataloader, num_batches: int = 0):
        return load_outside_the_step(skip_first_batches(dataloader, num_batches), self)

    def checks_open_step(self) -> bool:
        """Whether a step is open and the device's instruments are installed (captured or verified)."""
        if not self.device.in_step:
            return False
        return self._checked if self._began_step else self.device.next_step_checked()

    @contextlib.contextmanager
    def loading(self):
        """Fetch a batch beside the step, not in its graph (micro-batches load inside an open step)."""
        if not self.checks_open_step():
            yield  # nothing of the device is installed: nothing to step around
            return
        from torch.utils._python_dispatch import _disable_current_modes

        with _disable_current_modes(), torch._C.DisableTorchFunction():
            yield

    def _before_forward(self, module, args, kwargs):
        if not module.training or not torch.is_grad_enabled():
            return None
        if self.device.check != "off":
            self._check_cycle()
        if self.device.in_step:
            return None
        if self.monitor is not None:
            self._snapshot = self.monitor.snapshot()
        inputs = (args, kwargs) if kwargs else args
        self._checked = self.device.begin_step(inputs)
        self._began_step = True
        return None

    def runs_fast(self) -> bool:
        """Whether the open step runs its compiled pieces (a step the device does not check)."""
        return self.device.in_step and not self.checks_open_step()

    def schedulers_of(self, optimizer) -> list:
        """The schedulers of ``optimizer`` (the torch optimizer inside Accelerate's wrapper)."""
        return self._by_optimizer.get(id(optimizer), [])

    def _check_counts(self, schedulers: list) -> None:
        """Refuse a scheduler stepped by someone else since wse last stepped it.

        The usual cause: ``scheduler.step()`` called on the scheduler passed to ``prepare``
        rather than on the ``PerUpdateScheduler`` it returned, which steps it a second time.
        """
        for scheduler in schedulers:
            count, known = getattr(scheduler, "last_epoch", None), self._counts.get(id(scheduler))
            if isinstance(count, int) and known is not None and count != known:
                self._counts[id(scheduler)] = count  # said once per drift
                enforce(
                    self.strict,
                    SchedulerStepError,
                    f"{type(scheduler).__name__} was stepped {count - known} time(s) outside wse between two "
                    f"optimizer updates: wse.accelerate steps it once per update itself. Call step() on the "
                    f"object wse.accelerate.prepare returned in its place (model, optimizer, scheduler = "
                    f"wse.accelerate.prepare(accelerator, model, optimizer, scheduler)), or do not call it.",
                )

    def forget_scheduler_counts(self) -> None:
        """The schedulers' counts change by loading a state, not by stepping: start again."""
        self._counts.clear()

    def _remember_counts(self, schedulers: list) -> None:
        for scheduler in schedulers:
            count = getattr(scheduler, "last_epoch", None)
            if isinstance(count, int):
                self._counts[id(scheduler)] = count

    def _after_update(self, index: int, optimizer, args, kwargs) -> None:
        # Runs only when the wrapped optimizer really updated: gradients synchronised and
        # not skipped by the grad scaler.
        self._updated[index] = True

    def _optimizer_step(self, index: int, accelerate_step, closure=None):
        synchronised = self.accelerator.sync_gradients
        self._updated[index] = False
        if index == 0:
            self._micro_batches += 1
            if synchronised:
                count, self._micro_batches = self._micro_batches, 0
                if count == self.accelerator.gradient_accumulation_steps:
                    self._full_cycle = True
        try:
            if self.fast is not None and self.runs_fast():
                output = None
                if closure is not None:
                    raise TypeError(
                        "wse.accelerate.prepare(compile=True): optimizer.step() was given a closure; the compiled "
                        "update takes none. Compute the loss and call accelerator.backward before optimizer.step()."
                    )
                if synchronised:
                    schedulers = self.schedulers_of(self.inner_optimizers[index])
                    self._check_counts(schedulers)
                    self.fast.update()
                    self._remember_counts(schedulers)
                    self._updated[index] = True
            else:
                output = accelerate_step(closure)
                if self._updated[index]:
                    schedulers = self.schedulers_of(self.inner_optimizers[index])
                    self._check_counts(schedulers)
                    for scheduler in schedulers:
                        scheduler.step()
                    self._remember_counts(schedulers)
        except BaseException:
            self.device.abort_step()
            raise
        if self._updated[index] and index == 0:
            self.global_step += 1
            self._update_to_log = True
        if synchronised:
            self._stepped_in_step.add(index)
            if len(self._stepped_in_step) == len(self.optimizers):
                self._end_step()
        return output

    def _check_cycle(self) -> None:
        """Refuse an update of fewer micro-batches than the others, before it runs: it is another graph.

        Accelerate synchronises at the end of the dataloader whatever the cycle, so an
        epoch of a number of batches (per process) that is not a multiple of
        ``gradient_accumulation_steps`` ends with a shorter update. Judged only once a full
        cycle was seen (``optimizer.step()`` on every micro-batch, the Accelerate idiom):
        a loop that steps on the last micro-batch alone counts one per cycle.
        """
        wanted = self.accelerator.gradient_accumulation_steps
        count = self._micro_batches + 1
        if not self._full_cycle or count >= wanted or not self.accelerator.sync_gradients:
            return
        from ..device import GraphChangeError
        from ..device.location import user_location

        location = user_location()
        step = self.device.step_count + 1
        error = GraphChangeError(
            f"step {step}: this update accumulates {count} micro-batch(es), the others {wanted}: the "
            f"dataloader ends mid-cycle, and Accelerate synchronises at the end of the dataloader. A "
            f"shorter update is another graph (and weighs its micro-batches more).\n  at {location}\n"
            f"Give each process a number of batches per epoch that is a multiple of "
            f"gradient_accumulation_steps={wanted} (dataset size, batch size, drop_last), or pass "
            f"Accelerator(gradient_accumulation_plugin=GradientAccumulationPlugin(num_steps={wanted}, "
            f"sync_with_dataloader=False)) to carry the cycle across epochs.",
            step=step,
            location=location,
        )
        if self.device.check == "strict":
            self.device.abort_step()  # the error ends the loop: leave nothing installed
        self.device.report_violation(error, kind="short accumulation cycle")

    def _end_step(self) -> None:
        self._stepped_in_step.clear()
        device = self.device
        if not (device.in_step and self._began_step):
            return
        self._began_step = False
        device.end_step()
        if self.fast is not None:
            device.check_recompilation()
        if self.monitor is not None and self._snapshot is not None:
            snapshot, self._snapshot = self._snapshot, None
            updated, self._update_to_log = self._update_to_log, False
            if updated and self.accelerator.is_main_process:  # a skipped update used no values
                self.accelerator.log(snapshot.values(), step=self.global_step - 1)

    # -- the end of the run -------------------------------------------------------------

    def _end_training(self, end_training):
        self.finish()
        return end_training()

    def finish(self) -> None:
        """Print the one line of the end of the run (main process), once."""
        if self.finished:
            return
        self.finished = True
        if self.device.in_step:
            self.device.abort_step()
        report = self.device.report()
        logger.debug("wse device report:\n%s", report.format())
        self.accelerator.print(self.summary())

    def summary(self) -> str:
        """One line: the updates, then the device's own summary (steps, checks, violations)."""
        updates = "update" if self.global_step == 1 else "updates"
        return f"wse.accelerate: {self.global_step} {updates}; {self.device.summary()}"

    def describe(self) -> str:
        """One line: what runs where and what is enforced."""
        settings = self.device_settings
        where = where_it_runs(self.accelerator.num_processes, self.accelerator.distributed_type,
                              self.accelerator.device)
        in_graph, host_side = self.schedules
        schedules = ", ".join(in_graph + [f"{name} (host-side)" for name in host_side]) or "none"
        return (
            f"wse.accelerate on {where}: optimizer state allocated "
            f"[{'; '.join(self.optimizer_setup)}]; schedulers stepped once per update [{schedules}]; "
            f"device check={settings['check']!r}, verify_steps={settings['verify_steps']}, "
            f"verify_every={settings['verify_every']}, compile={settings['compile']}"
        )

    def __repr__(self) -> str:
        return f"AccelerateRun(global_step={self.global_step}, device={self.device!r})"


def _finish_at_exit(reference) -> None:
    run = reference()
    if run is not None and run.global_step and not run.finished:
        run.finish()


def where_it_runs(processes: int, distributed_type, device: torch.device) -> str:
    """``"1 process, cpu"`` or ``"2 processes (MULTI_CPU), cpu"``: the device's type, not the
    main process's own index, which says nothing of the other processes' devices."""
    where = f"{processes} processes ({distributed_type.value})" if processes > 1 else "1 process"
    return f"{where}, {torch.device(device).type}"
