"""Hugging Face Trainer callbacks: the LR/WD/momentum of every param group, added to the Trainer's logs.

Importing this module imports ``transformers``; nothing in ``wse.callbacks`` imports it otherwise, so it stays
an optional dependency.
"""
from __future__ import annotations

from typing import Optional

try:
    from transformers import TrainerCallback
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "wse.callbacks.hf holds Hugging Face Trainer callbacks and needs transformers: pip install transformers"
    ) from error

from wse.monitoring import ParamGroupMonitor, Snapshot


class LearningRateMonitor(TrainerCallback):
    """Adds every param group's learning rate (and weight decay, momentum) to the Trainer's logs.

    The Hugging Face Trainer logs ``learning_rate``, the first group's only. This callback
    adds one series per param group, named as Lightning's ``LearningRateMonitor`` and
    ``wse.callbacks.LearningRateMonitor`` name them: ``lr-AdamW/pg1``, ``lr-AdamW/pg2``
    (the Trainer's decay and no-decay groups), ``lr-AdamW/<name or tags>``, with
    ``-weight_decay`` and ``-momentum`` beside them. A training log at step ``k`` gets the
    values the optimizer used in step ``k`` (copied when the step begins, on the device
    with no host synchronisation, and read when the step has ended and the Trainer logs).
    Evaluation logs get nothing.

    The Trainer calls its callbacks in order and puts its reporting integrations
    (``report_to``: TensorBoard, W&B, ...) before the callbacks passed as
    ``Trainer(callbacks=[...])``: those integrations would see a log before this callback
    adds to it. ``add_to_trainer(trainer)`` puts the monitor first, so every integration
    reports the series; passed in ``callbacks=``, the series reach ``trainer.state.log_history``,
    the console and the callbacks after it.

    Args:
        log_momentum: also log each group's momentum (``betas[0]`` for Adam-like optimizers).
        log_weight_decay: also log each group's weight decay.
    """

    def __init__(self, log_momentum: bool = False, log_weight_decay: bool = True):
        self.log_momentum = log_momentum
        self.log_weight_decay = log_weight_decay
        self.monitor: Optional[ParamGroupMonitor] = None
        self._snapshot: Optional[Snapshot] = None
        self._snapshot_step: Optional[int] = None

    def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
        if optimizer is None:
            raise ValueError(
                "wse.callbacks.hf.LearningRateMonitor found no optimizer at the start of training; it reads the "
                "optimizer the Trainer creates or is given (Trainer(optimizers=(optimizer, scheduler)))."
            )
        self.monitor = ParamGroupMonitor([optimizer], self.log_momentum, self.log_weight_decay)
        self._snapshot, self._snapshot_step = None, None

    def on_step_begin(self, args, state, control, **kwargs):
        # Every step: a copy on the device, no sync. Whether this step will be logged is
        # decided only when it ends.
        if self.monitor is not None:
            self._snapshot, self._snapshot_step = self.monitor.snapshot(), state.global_step + 1

    def on_log(self, args, state, control, logs=None, **kwargs):
        snapshot = self._snapshot
        if snapshot is None or logs is None or self._snapshot_step != state.global_step:
            return
        if "loss" not in logs or any(key.startswith("eval_") for key in logs):
            return
        self._snapshot = None
        values = snapshot.values()
        logs.update(values)
        history = state.log_history
        if history and history[-1].get("step") == state.global_step and "loss" in history[-1]:
            history[-1].update(values)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(log_momentum={self.log_momentum}, log_weight_decay={self.log_weight_decay})"


def add_to_trainer(trainer, callback: Optional[LearningRateMonitor] = None) -> LearningRateMonitor:
    """Put ``callback`` (a new ``LearningRateMonitor`` if not given) first among ``trainer``'s callbacks.

    First, so that the reporting integrations (``report_to``) that come after it receive
    the per-group series in the logs it adds to. Returns the callback.
    """
    callback = callback if callback is not None else LearningRateMonitor()
    callbacks = trainer.callback_handler.callbacks
    if callback in callbacks:
        callbacks.remove(callback)
    callbacks.insert(0, callback)
    return callback
