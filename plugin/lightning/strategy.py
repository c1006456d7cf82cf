"""``WSEStrategy``: Lightning training under the rules of a static-graph accelerator."""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable, List, Optional

import lightning.pytorch as pl
from lightning.fabric.plugins.collectives.torch_collective import default_pg_timeout
from lightning.fabric.strategies import _StrategyRegistry
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch.optim import Optimizer

from .options import DeviceOptions, validate_strict
from .preinitialize import preinitialize
from .scheduling import SchedulerSteps, make_per_iteration

_CONSEQUENCE = {"raise": "raise an error", "warn": "warn", "off": "are ignored"}


class WSEStrategy(DDPStrategy):
    """Train as on a static-graph accelerator: state before step 1, schedules per iteration.

    Compared with Lightning's default strategy it changes three things:

    * every optimizer has all of its state at setup (``wse.optim`` optimizers allocate
      their own; ``torch.optim`` ones are given torch's own layout; any other is refused);
    * every scheduler from ``configure_optimizers`` steps exactly once per optimizer step,
      whatever its ``interval`` and ``frequency`` say (``ReduceLROnPlateau`` is refused);
    * the training step runs through one seam, ``_run_step_on_device``, where the
      static-graph device (capture, verify, replay) plugs in.

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
        check, verify_steps, verify_every, compile, replay: the static-graph device's
            settings (see ``wse.lightning.DeviceOptions``).
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
        self.device_options = DeviceOptions(check, verify_steps, verify_every, compile, replay)
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
            rank_zero_info(self.describe())

    def _setup_model(self, model):
        return super()._setup_model(model) if self.is_multiprocess else model

    # -- the rules ---------------------------------------------------------------------

    def setup_optimizers(self, trainer: "pl.Trainer") -> None:
        super().setup_optimizers(trainer)
        module = self.lightning_module
        scheduled = make_per_iteration(self.lr_scheduler_configs, self.strict)
        self._scheduler_steps = SchedulerSteps(
            scheduled, module.automatic_optimization, module.lr_scheduler_step, self.strict
        )
        self._optimizer_setup = [preinitialize(optimizer, self.strict) for optimizer in self.optimizers]

    def optimizer_step(
        self,
        optimizer: Optimizer,
        closure: Callable[[], Any],
        model: Optional[Any] = None,
        **kwargs: Any,
    ) -> Any:
        output = self._run_step_on_device(optimizer, closure, model, **kwargs)
        if self._scheduler_steps is not None:
            self._scheduler_steps.after_optimizer_step(optimizer)
        return output

    def _run_step_on_device(self, optimizer: Optimizer, closure: Callable[[], Any], model, **kwargs: Any) -> Any:
        """The one place the training step runs: the seam where the static-graph device plugs in.

        In automatic optimization ``closure`` runs the forward pass and the backward pass,
        and the optimizer then updates the parameters, so this call is the whole step.
        The device (``wse.device``) is to capture its first call, verify the next ones and
        then replay or compile it, as ``self.device_options`` say. No device is attached
        in this version: the step runs eagerly, exactly as under ``DDPStrategy``.
        """
        return super().optimizer_step(optimizer, closure, model, **kwargs)

    # -- what it says about itself -----------------------------------------------------

    def describe(self) -> str:
        """One line on what the strategy runs on and what it enforces."""
        processes = self.num_nodes * self.num_processes
        where = f"{processes} processes (DDP, {self._get_process_group_backend()})" if processes > 1 else "1 process"
        optimizers = "; ".join(self._optimizer_setup) or "none"
        configs = self.lr_scheduler_configs
        return (
            f"{self!r} on {where}, {self.root_device}. Enforcing: optimizer state allocated at setup "
            f"[{optimizers}]; {len(configs)} scheduler(s) stepped once per optimizer step; broken rules "
            f"{_CONSEQUENCE[self.strict]}. "
            f"Static-graph device: not attached in this version "
            f"(requested {self.device_options.describe()})."
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(strict={self.strict!r}, {self.device_options.describe()})"

    @classmethod
    def register_strategies(cls, strategy_registry: _StrategyRegistry) -> None:
        strategy_registry.register(
            cls.strategy_name,
            cls,
            description="Static-graph rules: optimizer state before step 1, schedules per optimizer step",
            override=True,
        )
