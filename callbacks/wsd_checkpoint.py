"""Lightning adapter of WSD checkpoint decay: pre- and post-decay checkpoints, continuation, decay branches."""
from __future__ import annotations

import contextlib
import logging
import math
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loops.optimization.automatic import ClosureResult
from lightning.pytorch.loops.utilities import _block_parallel_sync_behavior

from wse.wsd import (
    POST_DECAY,
    PRE_DECAY,
    CheckpointPlan,
    RunSnapshot,
    branch_batches,
    check_periods,
    find_decay_periods,
    post_decay_name,
    pre_decay_name,
)
from wse.wsd import files

__all__ = ["WSDCheckpointCallback"]

log = logging.getLogger(__name__)


class WSDCheckpointCallback(Callback):
    """Saves a checkpoint before and after every decay of a warmup-stable-decay schedule.

    The checkpoint steps come from the run's WSD scheduler through its
    ``decay_periods()`` (``wse.compat.pytorch_accelerated.WSDLrScheduler``,
    ``wse.compat.megatron.OptimizerParamScheduler(lr_decay_style="WSD")``, or a
    ``wse.optim`` scheduler bound to ``wse.schedules.WarmupStableDecay``); any other
    scheduler is an error when ``fit`` starts. Steps count optimizer updates
    (``trainer.global_step``).

    * **Pre-decay** (``pre_decay_step`` updates done): ``checkpoint_{step}_wsd_pre_decay``,
      a full Lightning checkpoint written by ``trainer.save_checkpoint`` (model,
      optimizers, schedulers, loops, callbacks, RNG), with the top-level metadata
      ``step``, ``current_epoch``, ``checkpoint_type``, ``total_steps``,
      ``decay_fraction`` and ``timestamp``. Resume it with
      ``trainer.fit(model, ckpt_path=...)``, or start a continuation from it.
    * **Post-decay** (``period_end`` updates done): ``checkpoint_{step}_wsd_post_decay.pt``
      in pytorch-accelerated's export layout (``model_state_dict``, and
      ``optimizer_state_dict`` / ``scheduler_state_dict`` if ``save_optimizer`` /
      ``save_scheduler``, and the metadata), its tensors on the CPU, readable with
      ``torch.load(..., weights_only=True)`` on any machine.

    Args:
        save_dir: directory of the checkpoints (created; must be writable).
        save_optimizer: keep the optimizer state in post-decay checkpoints.
        save_scheduler: keep the scheduler state in post-decay checkpoints.
        initial_checkpoint: start this run from a checkpoint of an earlier one: a
            pre-decay checkpoint (WSD: the earlier decay is discarded) or a post-decay
            one (WSD-S). The model and optimizer state are loaded when ``fit`` starts;
            the optimizer keeps this run's hyperparameters. A scheduler built with
            ``is_continuation_from_checkpoint=True`` also loads the saved scheduler
            state and starts a fresh stable phase over this run's length, without
            warmup; other schedulers run their schedule from step 0 as constructed.
        branch: decay in branches instead of in the run. The run never decays: from
            each ``pre_decay_step`` to its ``period_end`` (and after the last period)
            it holds the learning rate it had at the pre-decay step. At every
            pre-decay step the callback snapshots the model, optimizer, schedulers,
            gradient scaler and RNGs, runs the period's decay steps on the training
            data that follows (its own pass over the train dataloader, see
            ``wse.wsd.branch_data``), writes the post-decay checkpoint, and restores the
            run bit for bit. The decay steps are paid once per checkpoint, on top of
            the run's own steps. Branches need automatic optimization (one optimizer;
            gradient accumulation is honoured) and a single train dataloader; a
            branch's ``self.log`` calls are dropped and ``trainer.global_step`` stays at
            the pre-decay step while it runs. Under ``Trainer(strategy="wse")`` the
            branch runs inside ``WSEStrategy.extra_steps()``: its updates are steps of
            the fit's static-graph device, checked against the run's graph (a violation
            in a branch is raised or warned as in the run), with the schedulers stepped
            by the strategy inside them; afterwards the strategy's counts are the run's
            again, so the run's own steps are checked as without branches.

    Where pytorch-accelerated 0.1.61's callback fails, this one does not: it registers
    nothing per save, so a run resumes from any pre-decay checkpoint, the second of
    two included; the saved scheduler state keeps its update count (resuming does not
    warm up again); and a continuation scheduler stays one after its state is loaded.
    In several processes every rank takes part in each save and rank 0 writes, to a
    temporary name renamed when complete, before all ranks go on.
    """

    def __init__(
        self,
        save_dir: Union[str, Path] = "checkpoints",
        save_optimizer: bool = True,
        save_scheduler: bool = True,
        initial_checkpoint: Optional[Union[str, Path]] = None,
        branch: bool = False,
    ):
        for name, value in (("save_optimizer", save_optimizer), ("save_scheduler", save_scheduler), ("branch", branch)):
            if not isinstance(value, bool):
                raise TypeError(f"WSDCheckpointCallback: `{name}` must be True or False, got {value!r}.")
        self.save_dir = Path(save_dir)
        self.save_optimizer = save_optimizer
        self.save_scheduler = save_scheduler
        self.initial_checkpoint = Path(initial_checkpoint) if initial_checkpoint is not None else None
        self.branch = branch
        #: Paths of the checkpoints written during the last ``fit`` (by rank 0), in order.
        self.written: List[Path] = []
        self._plan: Optional[CheckpointPlan] = None
        self._scheduler = None
        self._total_steps: Optional[int] = None
        self._initial: Optional[dict] = None
        self._hold: Optional[List[float]] = None
        self._pending_metadata: Optional[dict] = None
        self._last_step: Optional[int] = None
        self._hold_again = False

    # -- checks before training -----------------------------------------------------------

    def setup(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        if stage != "fit":
            return
        files.require_writable_dir(self.save_dir)
        # Before Lightning restores a resumed run's callback state, which may set the hold again.
        self._hold = None
        self._initial = None
        if self.initial_checkpoint is not None:
            self._initial = files.load_checkpoint_file(self.initial_checkpoint)
            files.checkpoint_kind(self._initial, self.initial_checkpoint)

    def on_fit_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self.written = []
        self._last_step = None
        self._hold_again = False
        schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
        self._scheduler, periods = find_decay_periods(schedulers)
        if self.branch:
            self._require_branch_support(trainer, pl_module)
        if self._initial is not None:
            if trainer.ckpt_path is not None:
                raise ValueError(
                    f"WSDCheckpointCallback: initial_checkpoint ({str(self.initial_checkpoint)!r}) starts a new run "
                    f"from an earlier one, ckpt_path ({str(trainer.ckpt_path)!r}) resumes a run; give only one."
                )
            self._continue_from(self._initial, trainer, pl_module)
            self._initial = None
            # A continuation scheduler places its checkpoints once it has the saved settings.
            self._scheduler, periods = find_decay_periods(schedulers)
        total = trainer.estimated_stepping_batches
        self._total_steps = int(total) if math.isfinite(total) else None
        check_periods(periods, total)
        self._plan = CheckpointPlan(periods, branch=self.branch)
        log.debug("WSDCheckpointCallback: %r, save_dir=%s", self._plan, self.save_dir)

    @staticmethod
    def _require_branch_support(trainer, pl_module) -> None:
        problems = []
        if not pl_module.automatic_optimization:
            problems.append("manual optimization")
        if len(trainer.optimizers) != 1:
            problems.append(f"{len(trainer.optimizers)} optimizers")
        if problems:
            raise ValueError(
                f"WSDCheckpointCallback(branch=True) runs each decay as automatic-optimization steps of one "
                f"optimizer, outside the training loop; this run has {', '.join(problems)}. "
                f"Use branch=False to decay in the run itself."
            )

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self.branch:
            if isinstance(trainer.train_dataloader, (dict, list, tuple)):
                raise ValueError(
                    "WSDCheckpointCallback(branch=True) needs a single train dataloader to draw the branch's "
                    "batches from; this run has several. Combine them into one, or use branch=False."
                )
            # A run resumed inside a decay window keeps the stable value it held there.
            if self._hold is not None and self._plan.holds(trainer.global_step):
                self._apply_hold()
                # Strategy "wse" shows its schedules' floats after this hook, from their loaded (decayed) state.
                self._hold_again = True

    def on_train_batch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", batch, batch_idx) -> None:
        if self._hold_again:
            self._hold_again = False
            self._apply_hold()

    # -- the events -----------------------------------------------------------------------

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step == self._last_step:  # an accumulating micro-batch: no update happened
            return
        self._last_step = step
        events = self._plan.events_at(step)
        kinds = {event.kind for event in events}
        if PRE_DECAY in kinds and self.branch:
            self._hold = self._scheduled_values()
        for period in self._plan.branches_at(step):
            self._run_branch(trainer, pl_module, period, batch_idx)
        if PRE_DECAY in kinds:
            self._save_pre_decay(trainer, step)
        if POST_DECAY in kinds:
            self._save_post_decay(trainer, step)
        if self._hold is not None and self._plan.holds(step):
            self._apply_hold()

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        # A run that ends on a period end it has not handled (resumed right there) still leaves its model.
        step = trainer.global_step
        if self._plan is not None and step != self._last_step:
            if any(event.kind == POST_DECAY for event in self._plan.events_at(step)):
                self._save_post_decay(trainer, step)

    def on_fit_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        # Strategy "wse" gives its schedulers back their float values when it tears down (before
        # this hook), which writes the scheduled value: the run still holds its stable one.
        if self._hold is not None and self._plan is not None and self._plan.holds(trainer.global_step):
            self._apply_hold()

    # -- saving ---------------------------------------------------------------------------

    def _metadata(self, trainer, step: int, checkpoint_type: str) -> dict:
        """The published metadata; ``decay_fraction`` is the share of this period that decays."""
        period = next(p for p in self._plan.periods if step in (p.pre_decay_step, p.period_end))
        length = period.period_end - period.period_start
        return files.metadata(step, trainer.current_epoch, checkpoint_type, self._total_steps,
                              period.decay_steps / length if length else 0.0)

    def _save_pre_decay(self, trainer, step: int) -> None:
        path = self.save_dir / pre_decay_name(step)
        temporary = files.partial_path(path)
        self._pending_metadata = self._metadata(trainer, step, PRE_DECAY)
        try:
            trainer.save_checkpoint(temporary, weights_only=False)  # every rank takes part; rank 0 writes; ends on a barrier
        finally:
            self._pending_metadata = None
        if trainer.is_global_zero:
            files.replace_path(temporary, path)
        trainer.strategy.barrier("WSDCheckpointCallback.pre_decay")
        self.written.append(path)
        log.debug("WSDCheckpointCallback: saved %s", path)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: Dict[str, Any]) -> None:
        if self._pending_metadata is not None:
            checkpoint.update(self._pending_metadata)

    def _save_post_decay(self, trainer, step: int) -> None:
        path = self.save_dir / post_decay_name(step)
        strategy = trainer.strategy
        model_state = strategy.lightning_module_state_dict()  # collective under sharded strategies
        optimizer_state = None
        if self.save_optimizer:
            optimizer_state = strategy.optimizer_state(self._wsd_optimizer(trainer))
        scheduler_state = all_states = None
        if self.save_scheduler:
            scheduler_state = self._scheduler.state_dict()
            all_states = [config.scheduler.state_dict() for config in trainer.lr_scheduler_configs]
        checkpoint = files.post_decay_checkpoint(
            model_state, self._metadata(trainer, step, POST_DECAY), optimizer_state, scheduler_state, all_states
        )
        files.require_weights_only(
            checkpoint, f"the post-decay checkpoint {path.name}",
            "Make it plain tensors, numbers, strings and containers, or pass save_optimizer=False / "
            "save_scheduler=False to leave that state out.",
        )
        if trainer.is_global_zero:
            files.atomic_torch_save(files.to_cpu(checkpoint), path)
        strategy.barrier("WSDCheckpointCallback.post_decay")
        self.written.append(path)
        log.debug("WSDCheckpointCallback: saved %s", path)

    def _wsd_optimizer(self, trainer):
        optimizer = getattr(self._scheduler, "optimizer", None)
        return optimizer if any(optimizer is o for o in trainer.optimizers) else trainer.optimizers[0]

    # -- continuation ---------------------------------------------------------------------

    def _continue_from(self, checkpoint: dict, trainer, pl_module) -> None:
        path = self.initial_checkpoint
        kind = files.checkpoint_kind(checkpoint, path)
        model_state = checkpoint["state_dict"] if kind == PRE_DECAY else checkpoint["model_state_dict"]
        files.require_same_shape(model_state, pl_module.state_dict(), path)
        optimizer = self._wsd_optimizer(trainer)
        index = next(i for i, o in enumerate(trainer.optimizers) if o is optimizer)
        if kind == PRE_DECAY:
            states = checkpoint.get("optimizer_states") or []
            optimizer_state = states[index] if index < len(states) else None
        else:
            optimizer_state = checkpoint.get("optimizer_state_dict")
        if optimizer_state is not None:
            files.require_same_optimizer_shape(optimizer_state, optimizer, path)
        pl_module.load_state_dict(model_state)
        if optimizer_state is not None:
            # The moments come from the checkpoint, the hyperparameters from this run.
            hyperparameters = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
            optimizer.load_state_dict(optimizer_state)
            for group, kept in zip(optimizer.param_groups, hyperparameters):
                group.update(kept)
        scheduler = self._scheduler
        if getattr(scheduler, "is_continuation_from_checkpoint", False):
            if kind == PRE_DECAY:
                configs = [c.scheduler for c in trainer.lr_scheduler_configs]
                saved = checkpoint.get("lr_schedulers") or []
                position = next(i for i, s in enumerate(configs) if s is scheduler)
                scheduler_state = saved[position] if position < len(saved) else None
            else:
                scheduler_state = checkpoint.get("scheduler_state_dict")
            if scheduler_state is not None:
                scheduler.load_state_dict(scheduler_state)
        elif hasattr(scheduler, "is_continuation_from_checkpoint"):
            warnings.warn(
                f"WSDCheckpointCallback: continuing from {path.name} with a {type(scheduler).__name__} that is not a "
                f"continuation, so it warms up again and places its checkpoints as for a new run. Pass "
                f"is_continuation_from_checkpoint=True to start a fresh stable phase without warmup.",
                stacklevel=2,
            )
        log.debug("WSDCheckpointCallback: continuing from %s (%s, step %s)", path, kind, checkpoint.get("step"))

    # -- branches -------------------------------------------------------------------------

    def _held_groups(self):
        scheduler = self._scheduler
        key = getattr(scheduler, "param_group_field", None) or getattr(scheduler, "param_group_key", None) or "lr"
        return key, scheduler.optimizer.param_groups

    def _value_tensors(self) -> list:
        """The scheduler's value tensors where it computes its values as tensors, one per group (or None).

        Under strategy "wse" the groups show floats between steps and get these tensors
        back when the next step begins.
        """
        scheduler = self._scheduler
        last_value = getattr(scheduler, "get_last_value", None)
        if not getattr(scheduler, "uses_tensor_values", False) or not callable(last_value):
            return []
        return [value if isinstance(value, torch.Tensor) else None for value in last_value()]

    def _scheduled_values(self) -> List[float]:
        key, groups = self._held_groups()
        tensors = self._value_tensors()
        # The value the steps read: a value tensor's own, where there is one (read once, between steps).
        return [float(tensors[i] if i < len(tensors) and tensors[i] is not None else group[key])
                for i, group in enumerate(groups)]

    def _apply_hold(self) -> None:
        key, groups = self._held_groups()
        hidden = self._value_tensors()  # they hold the value too, or the next step would not
        for index, (group, value) in enumerate(zip(groups, self._hold)):
            targets = [group[key], hidden[index] if index < len(hidden) else None]
            if not isinstance(group[key], torch.Tensor):
                group[key] = value
            with torch.no_grad():
                for tensor in {id(t): t for t in targets if isinstance(t, torch.Tensor)}.values():
                    tensor.fill_(value)

    def _run_branch(self, trainer, pl_module, period, batch_idx: int) -> None:
        configs = trainer.lr_scheduler_configs
        stateful = [config.scheduler for config in configs]
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        if scaler is not None:
            stateful.append(scaler)
        snapshot = RunSnapshot.capture(pl_module, trainer.optimizers, stateful)
        optimizer = trainer.optimizers[0]
        batches = branch_batches(trainer.train_dataloader, skip=batch_idx + 1)
        log.debug("WSDCheckpointCallback: branch of %d decay steps from step %d", period.decay_steps, period.pre_decay_step)
        on_device = _is_wse_strategy(trainer.strategy)
        try:
            # Under strategy "wse" the updates are steps of the fit's device, which steps the schedulers in them.
            with _dropped_logging(pl_module), trainer.strategy.extra_steps() if on_device else contextlib.nullcontext():
                for k in range(period.decay_steps):
                    first = batch_idx + 1 + k * trainer.accumulate_grad_batches
                    _branch_update(trainer, pl_module, optimizer, batches, first)
                    if on_device:
                        continue
                    for config in configs:
                        if config.interval == "step" and not config.reduce_on_plateau and (k + 1) % config.frequency == 0:
                            pl_module.lr_scheduler_step(config.scheduler, None)
            self._save_post_decay(trainer, period.period_end)
        finally:
            snapshot.restore()

    # -- state ----------------------------------------------------------------------------

    def state_dict(self) -> Dict[str, Any]:
        return {"hold": None if self._hold is None else list(self._hold)}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        hold = state_dict.get("hold")
        self._hold = None if hold is None else [float(v) for v in hold]

    def __repr__(self) -> str:
        return (
            f"WSDCheckpointCallback(save_dir={str(self.save_dir)!r}, save_optimizer={self.save_optimizer}, "
            f"save_scheduler={self.save_scheduler}, initial_checkpoint="
            f"{None if self.initial_checkpoint is None else str(self.initial_checkpoint)!r}, branch={self.branch})"
        )


def _branch_update(trainer, pl_module, optimizer, batches, first_index: int) -> None:
    """One optimizer update as Lightning's automatic optimization makes it, outside the loop.

    ``accumulate_grad_batches`` batches: the loss of each divided by their number,
    gradients zeroed before the first one's backward, the gradient synchronisation of
    DDP held back until the last, whose closure the optimizer step runs. Through the
    strategy, so precision, gradient clipping and gradient averaging apply; without the
    loop, so no progress counter moves.
    """
    strategy = trainer.strategy
    count = trainer.accumulate_grad_batches

    def closure_of(batch_idx: int):
        batch = pl_module._on_before_batch_transfer(next(batches), dataloader_idx=0)
        batch = strategy.batch_to_device(batch, dataloader_idx=0)
        strategy.on_train_batch_start(batch, batch_idx)  # strategy "wse" begins its device step here

        def closure():  # Lightning's closure, operation for operation (strategy "wse" verifies it against the run's)
            result = ClosureResult.from_training_step_output(strategy.training_step(batch, batch_idx), count)
            if batch_idx == first_index:
                pl_module.optimizer_zero_grad(trainer.current_epoch, batch_idx, optimizer)
            if result.closure_loss is not None:
                strategy.backward(result.closure_loss, optimizer)
            return result.loss

        return closure

    for batch_idx in range(first_index, first_index + count - 1):
        with _block_parallel_sync_behavior(strategy, block=True):
            closure_of(batch_idx)()
    strategy.optimizer_step(optimizer, closure_of(first_index + count - 1), model=pl_module)


def _is_wse_strategy(strategy) -> bool:
    from wse.lightning import WSEStrategy  # Lightning adapter of the strategy; imported only when branching

    return isinstance(strategy, WSEStrategy)


@contextlib.contextmanager
def _dropped_logging(pl_module):
    """``self.log`` does nothing inside: a branch's losses are not the run's."""
    pl_module.log = pl_module.log_dict = lambda *args, **kwargs: None
    try:
        yield
    finally:
        vars(pl_module).pop("log", None)
        vars(pl_module).pop("log_dict", None)
