"""``WSEStrategy``: Lightning training under the rules of a static-graph accelerator."""
from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any, Callable, List, Optional, Union

import lightning.pytorch as pl
from lightning.fabric.plugins.collectives.torch_collective import default_pg_timeout
from lightning.fabric.strategies import _StrategyRegistry
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.rank_zero import rank_zero_debug, rank_zero_info
from torch.optim import Optimizer

from ..device import Device, HostHyperparameterError, StaticGraphWarning
from ..device.location import user_location
from ..rules import schedule_in_graph
from .errors import SchedulerStepError
from .fast_step import FastStep
from .on_device import DDP_CAPTURE_STEP, DDP_HOST_CODE, LIGHTNING_HOST_CODE, StepOnDevice
from .options import DeviceOptions, enforce, validate_strict
from .preinitialize import preinitialize
from .representation import FloatsBetweenSteps, host_values_in_checkpoint
from .scheduling import (
    SchedulerSteps,
    describe_optimizer,
    explicit_settings,
    host_side_message,
    make_per_iteration,
    switch_back_to_host_values,
    take_over_scheduler_steps,
)

_CONSEQUENCE = {"raise": "raise an error", "warn": "warn", "off": "are ignored"}


def _names(objects) -> str:
    return ", ".join(type(item).__name__ for item in objects)


class WSEStrategy(DDPStrategy):
    """Train as on a static-graph accelerator: state before step 1, schedules per iteration.

    Compared with Lightning's default strategy it changes three things:

    * every optimizer has all of its state at setup (``wse.optim`` optimizers allocate
      their own; ``torch.optim`` ones are given torch's own layout; any other is refused);
    * every scheduler from ``configure_optimizers`` steps exactly once per optimizer step,
      right after it and inside the training step, whatever its ``interval`` and
      ``frequency`` say (``ReduceLROnPlateau`` is refused, and so is a callback that swaps
      the schedulers during the fit, such as ``StochasticWeightAveraging``);
    * every training step runs on a static-graph device (``wse.device.Device``): step 1
      is captured, the next ``verify_steps`` are verified against it (a break of the
      contract is a typed error at the user's line), then the step runs eagerly with
      nothing installed, or compiled (``compile=True``), or with its update replayed from
      a CUDA graph (``replay="cuda_graph"``). With ``accumulate_grad_batches=k`` a step is
      a whole update: the ``k`` batches and the optimizer step. The schedulers that can
      (``wse.optim``'s) are switched to tensor values for the fit when the device checks
      or compiles the step; the param groups hold the tensors inside each step only, and
      the user's floats between steps, after the fit and in checkpoints. A scheduler that
      writes Python numbers is reported at setup.

    It says one short line at the start of the fit and one at its end; the detail is at
    ``logging.DEBUG`` level, in ``repr(strategy)``, ``strategy.describe()`` and
    ``strategy.device.report()``.

    ``Trainer(strategy="wse")`` resolves to this class for any number of devices: Lightning
    instantiates a registered strategy with no arguments and only then sets its
    ``parallel_devices`` and ``num_nodes``, so the path is chosen from those
    (``is_multiprocess``). Several processes train data-parallel with Lightning's own DDP
    machinery (gloo on CPUs, nccl on GPUs); one process takes the single-device path of
    ``SingleDeviceStrategy`` (no launcher, no process group, no DDP wrapper, no
    distributed sampler) and pays nothing for being able to do more.

    Args:
        strict: what a broken rule (lazy optimizer state, a scheduler that cannot step per
            iteration or was stepped other than once per optimizer step) does: ``"raise"``
            an error, ``"warn"`` and go on, or ``"off"`` (go on silently).
        check, verify_steps, verify_every, compile, replay, compile_backend: the
            static-graph device's settings (see ``wse.lightning.DeviceOptions``).
        **ddp_kwargs: passed to ``DDPStrategy`` (``process_group_backend``, ``timeout``,
            ``start_method``, ``find_unused_parameters`` and the other DDP arguments).
    """

    strategy_name = "wse"

    def __init__(
        self,
        strict: str = "raise",
        check: str = "strict",
        verify_steps: int = 3,
        verify_every: Optional[int] = None,
        compile: bool = False,
        replay: Optional[str] = None,
        *,
        compile_backend: Union[str, Callable] = "inductor",
        accelerator: Optional["pl.accelerators.Accelerator"] = None,
        parallel_devices: Optional[list] = None,
        cluster_environment=None,
        checkpoint_io=None,
        precision_plugin=None,
        process_group_backend: Optional[str] = None,
        timeout: Optional[timedelta] = default_pg_timeout,
        start_method: str = "popen",
        **ddp_kwargs: Any,
    ):
        self.strict = validate_strict(strict)
        self.device_options = DeviceOptions(check, verify_steps, verify_every, compile, replay, compile_backend)
        super().__init__(
            accelerator=accelerator,
            parallel_devices=parallel_devices,
            cluster_environment=cluster_environment,
            checkpoint_io=checkpoint_io,
            precision_plugin=precision_plugin,
            process_group_backend=process_group_backend,
            timeout=timeout,
            start_method=start_method,
            **ddp_kwargs,
        )
        self._scheduler_steps: Optional[SchedulerSteps] = None
        self._optimizer_setup: List[str] = []
        self._schedules: tuple = ([], [])  # the schedulers switched to tensor values here, host-side ones
        self._taken_over: list = []  # the scheduler configs the strategy steps, as configured
        self._setup_findings: List[str] = []  # static-graph violations found at setup (kinds)
        self._device: Optional[Device] = None
        self._on_device: Optional[StepOnDevice] = None
        self._undo_scheduling: Optional[Callable[[], None]] = None

    # -- one process or several --------------------------------------------------------

    @property
    def is_multiprocess(self) -> bool:
        """Whether training spans several processes (known once Lightning set the devices)."""
        return self.num_nodes * self.num_processes > 1

    def _configure_launcher(self) -> None:
        if self.is_multiprocess:
            super()._configure_launcher()
        else:
            # One process: train in this one, as SingleDeviceStrategy does.
            self._launcher = None

    def setup_environment(self) -> None:
        if self.is_multiprocess:
            super().setup_environment()
        else:
            # The device only: no process group.
            super(DDPStrategy, self).setup_environment()

    def setup(self, trainer: "pl.Trainer") -> None:
        self.device_options.check_device(self.root_device)
        if self.is_multiprocess:
            super().setup(trainer)
        else:
            # A DDP-family strategy makes Lightning wrap the sampler; one process needs no
            # DistributedSampler (and keeps the user's shuffling, as SingleDeviceStrategy does).
            connector = getattr(trainer, "_accelerator_connector", None)
            if connector is not None:
                connector.use_distributed_sampler = False
            # Strategy.setup: move the model, set up optimizers and precision; `_setup_model` keeps
            # the module unwrapped.
            super(DDPStrategy, self).setup(trainer)
        if trainer.state.fn == TrainerFn.FITTING:
            self._attach_device(trainer)
            rank_zero_debug(self.describe())
            rank_zero_info(self.start_line())

    def _setup_model(self, model):
        return super()._setup_model(model) if self.is_multiprocess else model

    # -- the rules ---------------------------------------------------------------------

    def setup_optimizers(self, trainer: "pl.Trainer") -> None:
        module = self.lightning_module
        configured = []
        user_configure = module.configure_optimizers

        def configure_optimizers():  # what the user returned, before Lightning fills in defaults
            configured.append(user_configure())
            return configured[-1]

        attributes = vars(module)
        own = attributes.get("configure_optimizers")  # LightningCLI sets one on the instance
        attributes["configure_optimizers"] = configure_optimizers
        try:
            super().setup_optimizers(trainer)
        finally:
            if own is None:
                attributes.pop("configure_optimizers", None)
            else:
                attributes["configure_optimizers"] = own
        if trainer.state.fn != TrainerFn.FITTING:
            return
        self._refuse_scheduler_swapping_callbacks(trainer)
        explicit = explicit_settings(configured[0] if configured else None)
        scheduled = make_per_iteration(self.lr_scheduler_configs, self.strict, explicit, module.automatic_optimization)
        self._scheduler_steps = SchedulerSteps(scheduled, module.lr_scheduler_step, self.strict, self.optimizers)
        self._taken_over = list(self.lr_scheduler_configs)
        self._optimizer_setup = [preinitialize(optimizer, self.strict) for optimizer in self.optimizers]

    def _refuse_scheduler_swapping_callbacks(self, trainer: "pl.Trainer") -> None:
        """``StochasticWeightAveraging`` replaces the schedulers at its start epoch: known now, said now."""
        from lightning.pytorch.callbacks import StochasticWeightAveraging

        for callback in trainer.callbacks:
            if isinstance(callback, StochasticWeightAveraging):
                enforce(
                    self.strict,
                    SchedulerStepError,
                    f"StochasticWeightAveraging replaces the schedulers from configure_optimizers with its "
                    f"epoch-wise SWALR when averaging starts; strategy 'wse' steps every scheduler once per "
                    f"optimizer step inside the step, so the swap cannot be honoured. Remove the callback and "
                    f"average the weights with Lightning's WeightAveraging callback (lightning.pytorch.callbacks, "
                    f"which leaves the schedulers alone), and express the averaging phase's learning rate in "
                    f"your schedule (e.g. SequentialLR ending in ConstantLR). With WSEStrategy(strict='warn') "
                    f"the swapped-in schedulers are left to Lightning, stepped as configured.",
                )

    def _check_scheduler_configs(self) -> None:
        """A callback replaced ``trainer.lr_scheduler_configs`` during the fit: refuse, or hand over."""
        configs, taken_over = self.lr_scheduler_configs, self._taken_over
        if len(configs) == len(taken_over) and all(a is b for a, b in zip(configs, taken_over)):
            return
        self._taken_over = list(configs)
        gone = [type(c.scheduler).__name__ for c in taken_over if all(c is not d for d in configs)]
        new = [type(c.scheduler).__name__ for c in configs if all(c is not d for d in taken_over)]
        enforce(
            self.strict,
            SchedulerStepError,
            f"trainer.lr_scheduler_configs was changed during the fit (replaced: {', '.join(gone) or 'none'}; "
            f"added: {', '.join(new) or 'none'}), most likely by a callback. Strategy 'wse' steps the "
            f"schedulers from configure_optimizers once per optimizer step inside the step and cannot take "
            f"over schedulers swapped in later. Put every phase of the schedule in configure_optimizers (e.g. "
            f"SequentialLR), or pass WSEStrategy(strict='warn') to leave the new schedulers to Lightning.",
        )
        # strict="warn"/"off": the replaced schedulers stop; the new ones step as Lightning would step them.
        self._scheduler_steps.keep_only(c.scheduler for c in configs)

    def _attach_device(self, trainer: "pl.Trainer") -> None:
        """Create this fit's device (after the optimizers' state exists) and hand it the steps."""
        options, module = self.device_options, self.lightning_module
        if options.fast:
            self._check_fast_path_applies()
        steps = self._scheduler_steps
        if options.check != "off" or options.fast:
            self._schedules = schedule_in_graph(steps.schedulers, self.root_device)
        else:
            self._schedules = ([], [])
        self._device = device = Device(
            module,
            self.optimizers,
            steps.schedulers,
            check=options.check,
            verify_steps=options.verify_steps,
            verify_every=options.verify_every,
            capture_step=self._capture_step,
            compile=options.compile,
            compile_backend=options.compile_backend,
            replay=options.replay,
            host_code=LIGHTNING_HOST_CODE + (DDP_HOST_CODE if self.is_multiprocess else ()),
        )
        self._setup_findings = []
        self._report_host_side_schedules(device)
        fast = None
        if options.fast:
            (optimizer,) = self.optimizers
            fast = FastStep(device, module, optimizer, steps, options.compile, options.replay == "cuda_graph")
        self._on_device = StepOnDevice(device, steps, fast, trainer, FloatsBetweenSteps(self._schedules[0]))
        self._undo_scheduling = take_over_scheduler_steps(trainer, self._steps_itself)

    @property
    def _capture_step(self) -> int:
        return DDP_CAPTURE_STEP if self.is_multiprocess else 1

    def _steps_itself(self, scheduler) -> bool:
        return any(scheduler is owned for owned in self._scheduler_steps.schedulers)

    def _report_host_side_schedules(self, device: Device) -> None:
        """A scheduler that writes Python numbers breaks the contract at every step: say so now.

        Whether the verified steps happen to see its value change (a ``StepLR`` with a
        long period does not) is chance; what is known at setup is said at setup.
        """
        # ReduceLROnPlateau left to Lightning (strict="warn"/"off") writes Python numbers too.
        left_to_lightning = [c.scheduler for c in self.lr_scheduler_configs if not self._steps_itself(c.scheduler)]
        host_side = self._schedules[1] + left_to_lightning
        if self.device_options.check == "off" or not host_side:
            return
        messages = [
            host_side_message(scheduler, describe_optimizer(scheduler.optimizer, self.optimizers))
            for scheduler in host_side
        ]
        location = user_location()
        error = HostHyperparameterError(
            "\n".join(messages) + f"\n  found at setup, for {location}", step=0, location=location
        )
        self._setup_findings.append(f"host-side scheduler(s) {_names(host_side)}")
        if self.device_options.check == "strict":
            raise error
        device.warn_once(error.kind, StaticGraphWarning(error))

    def _check_fast_path_applies(self) -> None:
        """``compile``/``replay`` build the step of automatic optimization in one process."""
        what = "compile=True" if self.device_options.compile else f"replay={self.device_options.replay!r}"
        if self.is_multiprocess:
            raise ValueError(
                f"WSEStrategy({what}) runs the verified step compiled or replayed in one process; with "
                f"{self.num_nodes * self.num_processes} processes the step runs eagerly only. Train on one "
                f"device, or leave `compile` False and `replay` None (the checks work with several processes)."
            )
        if not self.lightning_module.automatic_optimization:
            raise ValueError(
                f"WSEStrategy({what}) compiles the step that Lightning builds in automatic optimization; "
                f"this LightningModule uses manual optimization. Set `automatic_optimization = True`, or "
                f"leave `compile` False and `replay` None."
            )
        if len(self.optimizers) != 1:
            raise ValueError(
                f"WSEStrategy({what}) compiles the update of exactly one optimizer; configure_optimizers "
                f"returned {len(self.optimizers)}. Return one optimizer (param groups can give parts of the "
                f"model their own settings), or leave `compile` False and `replay` None (the checks work "
                f"with several optimizers)."
            )

    @property
    def device(self) -> Optional[Device]:
        """The static-graph device of the current or last fit (``device.report()``), if any."""
        return self._device

    def extra_steps(self):
        """A context for updates outside the fit's loop: run, checked, then forgotten by the strategy.

        Between two steps of a fit, a callback may train ahead and come back (a decay
        branch of ``wse.callbacks.WSDCheckpointCallback`` does). Inside the block each
        update made as Lightning's loop makes it (``on_train_batch_start(batch, batch_idx)``
        for each of its batches, the closure through ``training_step`` and ``backward``,
        then ``optimizer_step``) is a step of the fit's static-graph device: captured,
        verified against the same graph or run fast as the fit's step of that number would
        be, with the schedulers stepped inside it (the caller must not step them), and
        with its violations raised or warned under the fit's ``check``. On exit the
        strategy's bookkeeping is the fit's again: the schedulers' step counts it checks,
        the device's step count, graph and the values it compares the next step with, and
        the floats shown in the param groups between steps. So the fit's next step is
        checked as if the extra ones never ran. The model, optimizer state, scheduler
        state (their value tensors included) and random generators are the caller's to
        put back (``wse.wsd.RunSnapshot`` does, in place). Only during a fit, between steps.
        """
        if self._on_device is None:
            raise RuntimeError(
                "WSEStrategy.extra_steps() runs updates on the fit's device, which exists only while "
                "Trainer.fit runs; call it from a callback hook during the fit."
            )
        return self._on_device.extra_steps()

    def on_train_start(self) -> None:
        super().on_train_start()
        if self._on_device is not None:  # after a checkpoint was restored: its load put tensors back
            self._on_device.floats.as_floats()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # After the callbacks' and the module's hooks: the batch the step will see.
        super().on_train_batch_start(batch, batch_idx)
        if self._on_device is not None:
            self._check_scheduler_configs()
            self._on_device.batch_started(batch)

    def optimizer_step(
        self,
        optimizer: Optimizer,
        closure: Callable[[], Any],
        model: Optional[Any] = None,
        **kwargs: Any,
    ) -> Any:
        return self._run_step_on_device(optimizer, closure, model, **kwargs)

    def _run_step_on_device(self, optimizer: Optimizer, closure: Callable[[], Any], model, **kwargs: Any) -> Any:
        """One optimizer step and its schedulers' steps, on the static-graph device.

        In automatic optimization ``closure`` runs ``training_step``, ``zero_grad`` and the
        backward pass, the optimizer then updates the parameters and the schedulers step:
        this call is the whole training step, run between the device's ``begin_step`` and
        ``end_step``. The schedulers step here rather than in Lightning's loop (which
        ``take_over_scheduler_steps`` turns off) so that their update is part of the
        captured step, as on the hardware, where the schedule is in the graph; the order
        is Lightning's own, optimizer first. In manual optimization the step bracket is
        ``training_step`` (see there); here the optimizer's schedulers follow its step.
        """
        lightning_step = functools.partial(super().optimizer_step, optimizer, closure, model, **kwargs)
        on_device = self._on_device
        if on_device is not None and self.lightning_module.automatic_optimization:
            return on_device.run_optimizer_step(optimizer, lightning_step)
        output = lightning_step()
        if self._scheduler_steps is not None:
            self._scheduler_steps.step(optimizer)
        return output

    def training_step(self, *args: Any, **kwargs: Any) -> Any:
        """The LightningModule's ``training_step``, as the device needs it.

        In manual optimization it is the whole device step; in a verified step with
        ``compile=True`` it runs compiled; otherwise it runs as Lightning runs it.
        """
        on_device = self._on_device
        if on_device is None:
            return super().training_step(*args, **kwargs)
        if not self.lightning_module.automatic_optimization:
            # Manual optimization: training_step runs the whole step, optimizer steps included.
            with self._scheduler_steps.guarded():
                return on_device.run_training_step(functools.partial(super().training_step, *args, **kwargs))
        fast_training_step = on_device.fast_training_step
        if fast_training_step is not None:  # a verified step, compiled
            with self.precision_plugin.train_step_context():
                return fast_training_step(*args, **kwargs)
        return super().training_step(*args, **kwargs)

    def on_exception(self, exception: BaseException) -> None:
        if self._on_device is not None:
            self._on_device.abort()
        super().on_exception(exception)

    def on_train_end(self) -> None:
        super().on_train_end()
        if self._on_device is not None:
            self._on_device.abort()  # an update left unfinished (a callback stopped the fit mid-way)
        if self._device is not None:
            rank_zero_debug(self._device.report().format())
            rank_zero_info(self.end_line())

    def save_checkpoint(self, checkpoint: dict, filepath, storage_options: Optional[Any] = None) -> None:
        # The values the strategy turned into tensors are written as the floats they stand for,
        # so a checkpoint is the same whatever `check` was.
        host_values_in_checkpoint(checkpoint, self._schedules[0], self.lr_scheduler_configs)
        super().save_checkpoint(checkpoint, filepath, storage_options=storage_options)

    def teardown(self) -> None:
        if self._undo_scheduling is not None:
            self._undo_scheduling()
            self._undo_scheduling = None
        # The param groups get back the Python floats the user put there.
        switch_back_to_host_values(self._schedules[0])
        self._on_device = None  # the device (and its report) stays reachable as `self.device`
        super().teardown()

    # -- what it says about itself -----------------------------------------------------

    def start_line(self) -> str:
        """The one line logged when a fit starts: where it runs and which steps are checked."""
        processes = self.num_nodes * self.num_processes
        where = f"{processes} processes (DDP, {self._get_process_group_backend()})" if processes > 1 else "1 process"
        return f"wse: {where} on {self.root_device}; {self.device_options.describe_checks(self._capture_step)}."

    def end_line(self) -> str:
        """The one line logged when a fit ends: steps, checks and violations, in a few words."""
        device = self._device
        summary = getattr(device, "summary", None)
        if callable(summary):
            line = summary()
        else:
            report = device.report()
            if report.check == "off":
                line = f"{report.steps} steps, none checked (check='off')"
            else:
                at = f"step {report.captured_step}" if report.captured_step is not None else "no step"
                violations = report.total_violations
                said = f"{violations} violation(s), see strategy.device.report()" if violations else "no violations"
                line = f"{report.steps} steps, {at} captured and {report.steps_verified} verified: {said}"
        if self._setup_findings:
            line += f"; at setup: {', '.join(self._setup_findings)} (see the warning)"
        return line if line.startswith("wse") else f"wse: {line}."

    def describe(self) -> str:
        """What the strategy runs on and what it enforces, in full (logged at DEBUG level)."""
        processes = self.num_nodes * self.num_processes
        where = f"{processes} processes (DDP, {self._get_process_group_backend()})" if processes > 1 else "1 process"
        optimizers = "; ".join(self._optimizer_setup) or "none"
        configs = self.lr_scheduler_configs
        return (
            f"{self!r} on {where}, {self.root_device}. Enforcing: optimizer state allocated at setup "
            f"[{optimizers}]; {len(configs)} scheduler(s) stepped once per optimizer step, inside it; broken "
            f"rules {_CONSEQUENCE[self.strict]}. {self._describe_device()}"
        )

    def _describe_device(self) -> str:
        options = self.device_options
        if self._device is None:
            return "Static-graph device: attached when fitting."
        if options.fast:
            parts = []
            if options.compile:
                backend = options.compile_backend
                parts.append(f"compiled ({backend if isinstance(backend, str) else 'custom backend'})")
            if options.replay == "cuda_graph":
                parts.append("its update replayed from a CUDA graph")
            after = " and ".join(parts)
        else:
            after = "eagerly, with nothing installed"
        switched, host_side = self._schedules
        schedules = f"schedules switched to tensor values: {_names(switched) or 'none'}"
        if host_side:
            schedules += f"; host-side: {_names(host_side)}"
        return (
            f"Static-graph device attached: {options.describe_checks(self._capture_step)}; unchecked steps run "
            f"{after}; {schedules}."
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(strict={self.strict!r}, {self.device_options.describe()})"

    @classmethod
    def register_strategies(cls, strategy_registry: _StrategyRegistry) -> None:
        strategy_registry.register(
            cls.strategy_name,
            cls,
            description=(
                "Static-graph rules: optimizer state before step 1, schedules per optimizer step, "
                "every training step captured, verified and optionally compiled by wse.device"
            ),
            override=True,
        )
