"""The training steps of a fit on the static-graph device: one bracket per step, the schedulers inside.

``WSEStrategy`` hands each training step to a ``StepOnDevice``. The step runs between
the device's ``begin_step(batch)`` and ``end_step()``, so the device captures the first
one (forward, backward, optimizer step and the schedulers' update), verifies the next
ones and, once they are verified, may run them compiled or replayed (``FastStep``). The
bracket is:

* in automatic optimization, Lightning's ``optimizer_step`` (its closure runs
  ``training_step``, ``zero_grad`` and ``backward``, then the optimizer updates the
  parameters) followed by the optimizer's schedulers. Only batches that step the
  optimizer are steps: with ``accumulate_grad_batches=k`` the ``k - 1`` batches that
  only accumulate gradients run outside the device;
* in manual optimization, ``training_step``, which runs everything itself; each
  ``optimizer.step()`` in it is followed by that optimizer's schedulers.

Nothing here imports ``wse.device`` internals: the device is driven through its public
``begin_step`` / ``end_step`` / ``abort_step``.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from ..device import Device
from .fast_step import FastStep
from .scheduling import SchedulerSteps

#: Lightning's logging of step values: host-side bookkeeping beside the graph (values are
#: read after the step), left out of the captured graph and allowed to read the host.
#: Only ``log`` and ``log_dict`` of ``LightningModule``: its other methods (``backward``,
#: ``optimizer_step``, ``lr_scheduler_step``) run the step itself.
LIGHTNING_HOST_CODE = (
    "lightning.pytorch.core.module:LightningModule.log",
    "lightning.pytorch.core.module:LightningModule.log_dict",
    "lightning.pytorch.trainer.connectors.logger_connector.result",
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
    """

    def __init__(self, device: Device, scheduler_steps: SchedulerSteps, fast: Optional[FastStep] = None):
        self.device = device
        self.scheduler_steps = scheduler_steps
        self.fast = fast
        self._batch: Any = None
        # The compiled training_step while a fast step runs (the strategy's training_step uses it).
        self.fast_training_step: Optional[Callable] = None

    def batch_started(self, batch: Any) -> None:
        """The batch of the coming step (its shapes are the step's inputs)."""
        self._batch = batch

    def run_optimizer_step(self, optimizer, lightning_step: Callable[[], Any]) -> Any:
        """One automatic-optimization step: ``lightning_step()`` and the schedulers, on the device."""
        device = self.device
        fast = self.fast is not None and not device.next_step_checked()
        device.begin_step(self._batch)
        try:
            if fast:
                output = self._run_fast(lightning_step)
            else:
                output = lightning_step()
                self.scheduler_steps.step(optimizer)
        except BaseException:
            device.abort_step()
            raise
        device.end_step()
        if fast:
            device.check_recompilation()
        return output

    def _run_fast(self, lightning_step: Callable[[], Any]) -> Any:
        fast = self.fast
        self.fast_training_step = fast.training_step
        try:
            with fast.installed():  # the update and the schedulers run in the optimizer's step
                return lightning_step()
        finally:
            self.fast_training_step = None

    def run_training_step(self, training_step: Callable[[], Any]) -> Any:
        """One manual-optimization step: the whole ``training_step``, on the device."""
        device = self.device
        device.begin_step(self._batch)
        try:
            output = training_step()
        except BaseException:
            device.abort_step()
            raise
        device.end_step()
        return output

    def abort(self) -> None:
        """Drop a step interrupted by an exception (nothing of it is kept)."""
        self.device.abort_step()
