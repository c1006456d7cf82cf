"""Per-step training time under a Lightning strategy, shared by the Lightning benchmarks."""
from __future__ import annotations

import statistics
import time

import lightning as L


class StepTimer(L.Callback):
    """Times each training step, from ``on_train_batch_start`` to ``on_train_batch_end``."""

    def __init__(self):
        self.times, self._start = [], None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.times.append(time.perf_counter() - self._start)


def median_step_time(strategy, module: L.LightningModule, data, steps: int, warmup: int) -> float:
    """Fit ``module`` for ``steps`` steps on one CPU device; the median step after ``warmup``."""
    timer = StepTimer()
    trainer = L.Trainer(
        strategy=strategy,
        accelerator="cpu",
        devices=1,
        max_steps=steps,
        callbacks=[timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, data)
    return statistics.median(timer.times[warmup:])
