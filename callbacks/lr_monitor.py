"""``LearningRateMonitor``: Lightning's LR monitor, extended to weight decay, tags, several schedulers and the plan."""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Literal, Optional, Tuple

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.rank_zero import rank_zero_warn

from wse.monitoring import PLAN_FILENAME, ParamGroupMonitor, Snapshot, plan_figure, unwrap_optimizer, write_plan_csv

log = logging.getLogger(__name__)

_INTERVALS = (None, "step", "epoch")


class LearningRateMonitorError(MisconfigurationException, ValueError):
    """A ``LearningRateMonitor`` that cannot work as configured (a ``MisconfigurationException``, as Lightning's)."""


class LearningRateMonitor(Callback):
    r"""Log the learning rate, weight decay and momentum of every param group of every optimizer.

    A drop-in superset of ``lightning.pytorch.callbacks.LearningRateMonitor``: same
    arguments, same series names, so dashboards carry over:

    * ``lr-<Optimizer>`` for an optimizer with one param group, ``lr-<Optimizer>/pg<i>``
      (1-based) or ``lr-<Optimizer>/<group name>`` with several; ``lr-<Optimizer>-1``,
      ``-2``... for the second, third optimizer of the same class; a scheduler config's
      ``name`` replaces ``lr-<Optimizer>``;
    * ``<series>-weight_decay`` and ``<series>-momentum`` (``betas[0]`` for Adam-like
      optimizers) beside each learning-rate series.

    Different from Lightning's:

    * ``log_weight_decay=True`` by default;
    * a group without a ``name`` but with ``tags`` (``wse.optim``'s param-group tags) is
      named by its tags (``lr-AdamW/no_decay``);
    * one set of series per optimizer, however many schedulers step it (Lightning logs
      an optimizer with an LR and a WD scheduler twice, as ``lr-AdamW`` and ``lr-AdamW-1``);
    * a group without ``weight_decay`` or ``momentum`` has no such series (Lightning raises
      ``KeyError``, or logs a made-up 0 momentum);
    * an explicitly named scheduler config keeps its name exactly (Lightning appends
      ``-1`` to it when an unnamed optimizer of the same class came first);
    * an optimizer is logged once per step, not again at each epoch start under the
      same step (Lightning does so for an optimizer without a scheduler, or with
      schedulers of both intervals);
    * ``log_plan=True`` logs the whole planned schedule once, at fit start.

    **What is logged when.** With ``logging_interval="step"`` (or ``None`` for optimizers
    that have a step-interval scheduler or none), on every step where the Trainer logs
    (``log_every_n_steps``), the values the optimizer **used in that step**, under that
    step's index (``trainer.fit_loop.epoch_loop._batches_that_stepped``, as Lightning).
    They are taken at ``on_train_batch_start``, before the step, as a device-side copy
    with no host synchronisation, and brought to the host and logged at
    ``on_train_batch_end``, after the step: under ``strategy="wse"``, where the LR and WD
    are 0-d tensors written inside the captured step, the monitor never reads the host
    during the step. With ``"epoch"`` (or ``None`` for epoch-interval schedulers), at each
    epoch start. Only global rank zero writes to the loggers; every rank computes the same
    values and puts them in ``trainer.callback_metrics`` (as CPU scalar tensors, so that
    monitoring them costs no transfer to the device).

    **The plan.** With ``log_plan=True``, at fit start the values every scheduler with a
    known closed form (``wse.optim``'s, ``wse.compat``'s) will write over the run's
    ``trainer.estimated_stepping_batches`` steps are rendered once: as a figure
    (``add_figure("lr_plan", ...)``) for a logger whose experiment can show one
    (TensorBoard) when matplotlib is installed, else as ``lr_plan.csv`` in the logger's
    directory (``log_dir``).

    Args:
        logging_interval: ``"step"`` or ``"epoch"`` to log every optimizer at that interval,
            ``None`` to follow each scheduler's ``interval``.
        log_momentum: also log the momentum of each group that has one.
        log_weight_decay: also log the weight decay of each group that has one.
        log_plan: also render the planned schedule at fit start.

    Raises:
        LearningRateMonitorError: (a ``MisconfigurationException``) at construction for an
            unknown ``logging_interval``; at fit start when the Trainer has no logger, or
            ``log_plan=True`` and the run's length is unknown.
    """

    def __init__(
        self,
        logging_interval: Optional[Literal["step", "epoch"]] = None,
        log_momentum: bool = False,
        log_weight_decay: bool = True,
        log_plan: bool = False,
    ) -> None:
        if logging_interval not in _INTERVALS:
            raise LearningRateMonitorError(
                f"LearningRateMonitor: `logging_interval` must be 'step', 'epoch' or None, got {logging_interval!r}."
            )
        self.logging_interval = logging_interval
        self.log_momentum = log_momentum
        self.log_weight_decay = log_weight_decay
        self.log_plan = log_plan
        # As in Lightning's monitor: every learning rate logged, and the last momentum / weight decay.
        self.lrs: Dict[str, List[float]] = {}
        self.last_momentum_values: Dict[str, Optional[float]] = {}
        self.last_weight_decay_values: Dict[str, Optional[float]] = {}
        # Set by the callback factory: stand aside when the user added a monitor of their own.
        self._defer_to_user_monitor = False
        self._active = True
        self._step_monitor: Optional[ParamGroupMonitor] = None
        self._epoch_monitor: Optional[ParamGroupMonitor] = None
        self._pending: Optional[Tuple[Snapshot, int]] = None
        self._last_logged_step: Optional[int] = None

    # -- fit start: which optimizers, under which names, at which interval --------------

    def on_train_start(self, trainer: "pl.Trainer", *args: Any, **kwargs: Any) -> None:
        self._pending, self._last_logged_step = None, None
        if self._defer_to_user_monitor and self._user_monitor_present(trainer):
            log.debug("LearningRateMonitor from WSE_CALLBACKS stands aside: the Trainer has a learning-rate monitor.")
            self._active = False
            return
        self._active = True
        if not trainer.loggers:
            raise LearningRateMonitorError(
                "Cannot use `LearningRateMonitor` callback with a `Trainer` that has no logger: pass "
                "`logger=CSVLogger(...)` (or TensorBoardLogger, WandbLogger, ...) to the Trainer, or remove the callback."
            )
        optimizers, names, intervals = self._optimizers_in_lightning_order(trainer)
        try:
            monitor = ParamGroupMonitor(optimizers, self.log_momentum, self.log_weight_decay, names=names)
        except ValueError as error:  # duplicate group names, or two optimizers under one name
            raise LearningRateMonitorError(f"LearningRateMonitor: {error}") from error
        prefixes = monitor.prefixes
        at_step = [i for i, kinds in enumerate(intervals) if self._logs_at(kinds, "step")]
        # An optimizer logged every step is not logged again at epoch starts: its step rows
        # already carry every value, whichever interval its schedulers have.
        at_epoch = [i for i, kinds in enumerate(intervals) if self._logs_at(kinds, "epoch") and i not in at_step]
        self._step_monitor = self._subset(monitor, optimizers, prefixes, at_step)
        self._epoch_monitor = self._subset(monitor, optimizers, prefixes, at_epoch)
        names = monitor.names
        self.lrs = {name: [] for name in names if not name.endswith(("-momentum", "-weight_decay"))}
        self.last_momentum_values = {name: None for name in names if name.endswith("-momentum")}
        self.last_weight_decay_values = {name: None for name in names if name.endswith("-weight_decay")}
        log.debug("LearningRateMonitor series: %s", names)
        if self.log_plan:
            self._log_plan(trainer, monitor)

    def _user_monitor_present(self, trainer: "pl.Trainer") -> bool:
        # By class name: Lightning's monitor, ours, and those of the `pytorch_lightning` copy of Lightning.
        return any(
            callback is not self
            and any(cls.__name__ == "LearningRateMonitor" for cls in type(callback).__mro__)
            and not getattr(callback, "_defer_to_user_monitor", False)
            for callback in trainer.callbacks
        )

    @staticmethod
    def _optimizers_in_lightning_order(trainer: "pl.Trainer"):
        """Optimizers with schedulers first (in config order), then the others, as Lightning names them."""
        optimizers, names, intervals, index = [], [], [], {}
        for config in trainer.lr_scheduler_configs:
            optimizer = unwrap_optimizer(config.scheduler.optimizer)
            at = index.get(id(optimizer))
            if at is None:
                at = index[id(optimizer)] = len(optimizers)
                optimizers.append(optimizer)
                names.append(None)
                intervals.append(set())
            if names[at] is None and config.name is not None:
                names[at] = config.name
            intervals[at].add(config.interval)
        for optimizer in trainer.optimizers:
            optimizer = unwrap_optimizer(optimizer)
            if id(optimizer) not in index:
                index[id(optimizer)] = len(optimizers)
                optimizers.append(optimizer)
                names.append(None)
                intervals.append(set())
        return optimizers, names, intervals

    def _logs_at(self, scheduler_intervals: set, moment: str) -> bool:
        if self.logging_interval is not None:
            return self.logging_interval == moment
        if not scheduler_intervals:  # no scheduler: its values are logged every step
            return moment == "step"
        return moment in scheduler_intervals

    def _subset(self, monitor, optimizers, prefixes, indices) -> Optional[ParamGroupMonitor]:
        if not indices:
            return None
        if len(indices) == len(optimizers):
            return monitor
        return ParamGroupMonitor(
            [optimizers[i] for i in indices], self.log_momentum, self.log_weight_decay, names=[prefixes[i] for i in indices]
        )

    # -- every step: copy before the step, log after it ---------------------------------

    def on_train_batch_start(self, trainer: "pl.Trainer", *args: Any, **kwargs: Any) -> None:
        monitor = self._step_monitor
        if monitor is None or not self._active or not trainer._logger_connector.should_update_logs:
            self._pending = None
            return
        step = trainer.fit_loop.epoch_loop._batches_that_stepped
        if step == self._last_logged_step:  # gradient accumulation: one optimizer step, several batches
            self._pending = None
            return
        self._pending = (monitor.snapshot(), step)

    def on_train_batch_end(self, trainer: "pl.Trainer", *args: Any, **kwargs: Any) -> None:
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        snapshot, step = pending
        self._last_logged_step = step
        self._publish(trainer, snapshot.values(), step)

    def on_train_epoch_start(self, trainer: "pl.Trainer", *args: Any, **kwargs: Any) -> None:
        monitor = self._epoch_monitor
        if monitor is None or not self._active:
            return
        self._publish(trainer, monitor.read(), trainer.fit_loop.epoch_loop._batches_that_stepped)

    def _publish(self, trainer: "pl.Trainer", values: Dict[str, float], step: int) -> None:
        lrs, momenta, decays = self.lrs, self.last_momentum_values, self.last_weight_decay_values
        # The dict behind `trainer.callback_metrics`: that property first gathers every metric
        # logged with self.log, which costs more than this whole hook.
        metrics = getattr(trainer._logger_connector, "_callback_metrics", None)
        if not isinstance(metrics, dict):
            metrics = trainer.callback_metrics
        for name, value in values.items():
            if name in decays:
                decays[name] = value
            elif name in momenta:
                momenta[name] = value
            else:
                series = lrs.get(name)
                if series is None:
                    series = lrs[name] = []  # a param group added during the fit
                series.append(value)
            metrics[name] = torch.scalar_tensor(value)
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(values, step=step)

    # -- the plan ----------------------------------------------------------------------

    def _log_plan(self, trainer: "pl.Trainer", monitor: ParamGroupMonitor) -> None:
        total = trainer.max_steps if trainer.max_steps > 0 else trainer.estimated_stepping_batches
        if not isinstance(total, int) and not (isinstance(total, float) and total.is_integer()):
            raise LearningRateMonitorError(
                "LearningRateMonitor(log_plan=True) needs the length of the run, but it is unknown (no `max_steps`, "
                "and `max_epochs=-1` or an iterable dataset without a length). Set `Trainer(max_steps=...)`, or "
                "pass log_plan=False."
            )
        configs = trainer.lr_scheduler_configs
        # A plan is in optimizer steps: a scheduler stepped per epoch has none.
        per_epoch = [type(c.scheduler).__name__ for c in configs if c.interval != "step" or c.frequency != 1]
        plan = monitor.plan([c.scheduler for c in configs if c.interval == "step" and c.frequency == 1], int(total))
        if plan.unplanned or per_epoch:
            reasons = []
            if plan.unplanned:
                reasons.append(f"no closed form is known for {', '.join(plan.unplanned)} (wse.optim's and wse.compat's "
                               f"schedulers have one)")
            if per_epoch:
                reasons.append(f"{', '.join(per_epoch)} step(s) other than once per optimizer step (interval='step', "
                               f"frequency=1 plans it)")
            rank_zero_warn(f"LearningRateMonitor(log_plan=True) leaves some values out of the plan: {'; '.join(reasons)}.")
        if not plan or not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            add_figure = getattr(getattr(logger, "experiment", None), "add_figure", None)
            if callable(add_figure):
                try:
                    figure = plan_figure(plan)
                except ImportError:
                    figure = None
                if figure is not None:
                    add_figure("lr_plan", figure, global_step=0)
                    continue
            directory = getattr(logger, "log_dir", None) or getattr(logger, "save_dir", None)
            if directory is None:
                log.debug("LearningRateMonitor: %s has no directory; the plan is not written for it.", type(logger).__name__)
                continue
            path = write_plan_csv(plan, str(directory), PLAN_FILENAME)
            log.debug("LearningRateMonitor: planned schedule written to %s", path)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(logging_interval={self.logging_interval!r}, log_momentum={self.log_momentum}, "
            f"log_weight_decay={self.log_weight_decay}, log_plan={self.log_plan})"
        )
