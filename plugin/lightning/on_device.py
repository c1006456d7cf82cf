"""The training steps of a fit on the static-graph device: one bracket per step, the schedulers inside.

``WSEStrategy`` hands each training step to a ``StepOnDevice``. The step runs between
the device's ``begin_step(batch)`` and ``end_step()``, so the device captures the first
one (forward, backward, optimizer step and the schedulers' update), verifies the next
ones and, once they are verified, may run them compiled or replayed (``FastStep``). The
bracket is:

* in automatic optimization, a whole update: from the first batch of an accumulation
  window to Lightning's ``optimizer_step`` (its closure runs ``training_step``,
  ``zero_grad`` and ``backward``, then the optimizer updates the parameters) and the
  optimizer's schedulers. With ``accumulate_grad_batches=k`` the step holds the ``k``
  batches' forward and backward passes: every step is the same update, wherever the fit
  started (a resumed fit captures a whole update too). An update of fewer batches (an
  epoch whose length is not a multiple of ``k``) is a different graph, reported as such;
* in manual optimization, ``training_step``, which runs everything itself; each
  ``optimizer.step()`` in it is followed by that optimizer's schedulers.

Nothing here imports ``wse.device`` internals: the device is driven through its public
``begin_step`` / ``end_step`` / ``abort_step``.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Optional

from ..device import Device, ShapeChangeError, StaticGraphWarning
from ..device.location import user_location
from .fast_step import FastStep
from .representation import FloatsBetweenSteps
from .scheduling import SchedulerSteps

#: Lightning's logging of step values: host-side bookkeeping beside the graph (values are
#: read after the step), left out of the captured graph and allowed to read the host.
#: Only ``log`` and ``log_dict`` of ``LightningModule``: its other methods (``backward``,
#: ``optimizer_step``, ``lr_scheduler_step``) run the step itself.
#: With gradient accumulation the step spans several batches, and Lightning runs its
#: per-batch machinery between them: loading the next batch (the input pipeline), the
#: logger connector, and its own callbacks' batch hooks (checkpointing, monitoring,
#: progress), which act on some batches and not others. All of it is bookkeeping beside
#: the graph, as a step closure would be; the user's own hooks stay part of the step.
LIGHTNING_HOST_CODE = (
    "lightning.pytorch.core.module:LightningModule.log",
    "lightning.pytorch.core.module:LightningModule.log_dict",
    "lightning.pytorch.trainer.connectors.logger_connector",
    "lightning.pytorch.callbacks",
    "lightning.pytorch.loops.fetchers",
    "torch.utils.data",
)
#: With several processes, DistributedDataParallel's own Python code as well: its bucket
#: bookkeeping is the runtime's, not the model's graph. DDP re-buckets the gradients after
#: its first iteration (the copies into the buckets, run by its C++ hooks during the
#: backward pass, change then), so with several processes the device captures step 2.
DDP_HOST_CODE = ("torch.nn.parallel.distributed",)
DDP_CAPTURE_STEP = 2


class StepOnDevice:
    """Runs a fit's training steps on ``device``: checked while verifying, then fast if asked.

    Args:
        device: the static-graph device of this fit.
        scheduler_steps: steps each optimizer's schedulers right after it.
        fast: the compiled / replayed pieces of the step (``compile=True`` or
            ``replay="cuda_graph"``), used once the device no longer checks the step.
        trainer: the Lightning trainer (its loop says whether a batch steps the optimizer).
        floats: shows the param groups' floats between steps, their tensors inside them.
    """

    def __init__(
        self,
        device: Device,
        scheduler_steps: SchedulerSteps,
        fast: Optional[FastStep] = None,
        trainer=None,
        floats: Optional[FloatsBetweenSteps] = None,
    ):
        self.device = device
        self.scheduler_steps = scheduler_steps
        self.fast = fast
        self.trainer = trainer
        self.floats = floats or FloatsBetweenSteps(())
        self._batch: Any = None
        self._window = 0  # batches of the update in progress (automatic optimization)
        self._fast_window = False
        self._extra = False  # inside extra_steps()
        # The compiled training_step while a fast step runs (the strategy's training_step uses it).
        self.fast_training_step: Optional[Callable] = None

    def _automatic(self) -> bool:
        trainer = self.trainer
        return trainer is not None and trainer.lightning_module.automatic_optimization

    def batch_started(self, batch: Any) -> None:
        """A batch starts: in automatic optimization, the first batch of an update begins the step."""
        self._batch = batch
        if not self._automatic():
            return
        device = self.device
        if not device.in_step:
            self._window = 0
            self._fast_window = self.fast is not None and not device.next_step_checked()
            self.floats.as_tensors()
            device.begin_step(batch)
            if self._fast_window:
                self.fast_training_step = self.fast.training_step
        self._window += 1
        accumulate = self.trainer.accumulate_grad_batches
        if self._extra:  # extra updates take their batches themselves, whole windows: the loop's count does not apply
            return
        if accumulate > 1 and self._window < accumulate and not self.trainer.fit_loop._should_accumulate():
            self._short_update(accumulate)

    @contextlib.contextmanager
    def extra_steps(self):
        """Updates inside the block are device steps as usual; on exit the fit's bookkeeping is back.

        The device forgets the steps (``Device.extra_steps``), the schedulers' counts are the
        fit's again (``SchedulerSteps.counts_kept``), the batch the fit's last step saw is
        the current one and the param groups show their floats. See ``WSEStrategy.extra_steps``.
        """
        kept_batch, self._extra = self._batch, True
        try:
            with self.scheduler_steps.counts_kept(), self.device.extra_steps():
                yield
        finally:
            self._end_window()
            self._batch, self._extra = kept_batch, False
            self.floats.as_floats()

    def _short_update(self, accumulate: int) -> None:
        trainer, device = self.trainer, self.device
        location = user_location()
        error = ShapeChangeError(
            f"step {device.step_count + 1}: this update accumulates {self._window} batch(es), not "
            f"accumulate_grad_batches={accumulate}: the epoch ends after {trainer.fit_loop.epoch_loop.batch_idx + 1} "
            f"batches, and Lightning steps the optimizer on the last one. A compiled step has a fixed number "
            f"of micro-batches, so this update is another graph.\n  at {location}\nMake the number of batches per "
            f"epoch a multiple of {accumulate} (limit_train_batches, or the dataset and batch size), or resume "
            f"at an epoch boundary or with a resumable dataloader (Lightning restarts a plain DataLoader from "
            f"its first batch, so a mid-epoch resume shifts the epoch's end).",
            step=device.step_count + 1,
            location=location,
        )
        if device.check == "strict":
            raise error
        if device.check == "warn":
            device.warn_once(error.kind, StaticGraphWarning(error))

    def run_optimizer_step(self, optimizer, lightning_step: Callable[[], Any]) -> Any:
        """The end of an automatic-optimization step: ``lightning_step()`` and the schedulers."""
        device = self.device
        if not device.in_step:  # an optimizer step without a batch (e.g. called by a callback)
            self._window = 0
            self._fast_window = self.fast is not None and not device.next_step_checked()
            self.floats.as_tensors()
            device.begin_step(self._batch)
        fast = self._fast_window
        try:
            if fast:
                output = self._run_fast(lightning_step)
            else:
                output = lightning_step()
                self.scheduler_steps.step(optimizer)
        except BaseException:
            self.abort()
            raise
        self._end_window()
        device.end_step()
        self.floats.as_floats()
        if fast:
            device.check_recompilation()
        return output

    def _end_window(self) -> None:
        self._window = 0
        self._fast_window = False
        self.fast_training_step = None

    def _run_fast(self, lightning_step: Callable[[], Any]) -> Any:
        fast = self.fast
        self.fast_training_step = fast.training_step
        with fast.installed():  # the update and the schedulers run in the optimizer's step
            return lightning_step()

    def run_training_step(self, training_step: Callable[[], Any]) -> Any:
        """One manual-optimization step: the whole ``training_step``, on the device."""
        device = self.device
        self.floats.as_tensors()
        device.begin_step(self._batch)
        try:
            output = training_step()
        except BaseException:
            self.abort()
            raise
        device.end_step()
        self.floats.as_floats()
        return output

    def abort(self) -> None:
        """Drop a step interrupted by an exception (nothing of it is kept)."""
        self._end_window()
        self.device.abort_step()
        self.floats.as_floats()
