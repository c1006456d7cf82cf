"""Time per training step with wse's LearningRateMonitor logging every step, over Lightning's and over none.

    python benchmarks/bench_callbacks.py [--rounds 11] [--steps 200]

The small MLP of ``bench_strategy.py`` (wse.optim.AdamW, an LR and a WD scheduler on one
optimizer), ``log_every_n_steps=1`` and a logger that keeps nothing, so that what is
measured is the monitor's own work. Three contenders per strategy: no monitor,
Lightning's ``LearningRateMonitor`` and wse's, both with ``logging_interval="step",
log_weight_decay=True``. A step is timed from one ``on_train_batch_start`` to the next,
so a monitor's work at the end of a step is counted as well as at its start (wse's reads
before the step and logs after it). Times are the process's CPU time (one torch thread),
which the load of other processes on the machine does not inflate. The contenders alternate, round after round; the
table shows medians. Targets: wse / Lightning <= 1.0, wse / none <= 1.03. A second table
shows the time spent inside the monitors' own per-step hooks, which the step-time noise
of a shared machine can hide.

Under ``strategy="wse"`` the LR and WD are 0-d tensors: wse's monitor copies them with one
``torch.stack`` and reads them with one ``tolist()``; Lightning's hands the tensors to the
logger and builds a tensor from each for ``callback_metrics``.
"""
import argparse
import logging
import statistics
import time
import warnings

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor as LightningMonitor
from lightning.pytorch.loggers import Logger
from torch.utils.data import DataLoader, TensorDataset

import wse
import wse.optim
from bench_strategy import MLP
from wse.callbacks import LearningRateMonitor

WARMUP = 20
# CPU time of this process, not wall time: on a shared machine the wall time of a step
# swings with the neighbours' load by more than a monitor costs. With one torch thread and
# the data loaded in this process, a step's CPU time is the work done for it.
CLOCK = time.process_time


class DiscardingLogger(Logger):
    """Takes every metric and keeps none: the monitors are measured, not a logger's IO."""

    name, version = "discard", 0

    def __init__(self):
        super().__init__()
        self.calls = 0

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def log_metrics(self, metrics, step=None):
        self.calls += 1


class StepToStepTimer(L.Callback):
    """The time from one ``on_train_batch_start`` to the next: the whole step, every hook included."""

    def __init__(self):
        self.starts = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.starts.append(CLOCK())

    def step_times(self):
        return [b - a for a, b in zip(self.starts, self.starts[1:])]


class HookClock:
    """Wraps a callback's per-step hooks and keeps the time spent in each call."""

    HOOKS = ("on_train_batch_start", "on_train_batch_end")

    def __init__(self, callback):
        self.calls = {hook: [] for hook in self.HOOKS}
        for hook in self.HOOKS:
            setattr(callback, hook, self._timed(getattr(callback, hook), self.calls[hook]))

    @staticmethod
    def _timed(hook, calls):
        def timed(*args, **kwargs):
            start = CLOCK()
            try:
                return hook(*args, **kwargs)
            finally:
                calls.append(CLOCK() - start)

        return timed

    def median_per_step(self) -> float:
        """The median over the steps after warm-up of the time spent in the hooks of one step."""
        per_step = [sum(times) for times in zip(*self.calls.values())]
        return statistics.median(per_step[WARMUP:])


MONITORS = {
    "none": lambda: [],
    "lightning": lambda: [LightningMonitor(logging_interval="step", log_weight_decay=True)],
    "wse": lambda: [LearningRateMonitor(logging_interval="step", log_weight_decay=True)],
}


def median_step_time(strategy_name, monitor, data, steps):
    """The median step time of one fit, and the time per step spent in the monitor's hooks."""
    timer, logger = StepToStepTimer(), DiscardingLogger()
    strategy = "auto" if strategy_name == "auto" else wse.WSEStrategy()
    monitors = MONITORS[monitor]()
    clocks = [HookClock(callback) for callback in monitors]
    trainer = L.Trainer(
        strategy=strategy, accelerator="cpu", devices=1, max_steps=steps, log_every_n_steps=1,
        callbacks=[timer] + monitors, logger=logger,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(MLP(wse.optim.AdamW, steps), data)
    if monitor != "none":
        assert logger.calls >= steps - 1, f"the {monitor} monitor did not log every step"
    in_hooks = clocks[0].median_per_step() if clocks else 0.0
    return statistics.median(timer.step_times()[WARMUP:]), in_hooks


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    data = DataLoader(
        TensorDataset(torch.randn(4096, 64, generator=generator), torch.randint(0, 10, (4096,), generator=generator)),
        batch_size=64,
    )
    # Lightning's start-up lines and warnings, once per fit, would bury the table.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("wse").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    rows = []
    for strategy_name in ("auto", "wse"):
        times = {name: [] for name in MONITORS}
        hooks = {name: [] for name in MONITORS}
        for round_index in range(args.rounds):
            order = list(MONITORS)
            order = order[round_index % len(order):] + order[: round_index % len(order)]
            for monitor in order:
                step, in_hooks = median_step_time(strategy_name, monitor, data, args.steps)
                times[monitor].append(step)
                hooks[monitor].append(in_hooks)
        rows.append((
            strategy_name,
            {name: statistics.median(values) for name, values in times.items()},
            {name: statistics.median(values) for name, values in hooks.items()},
        ))

    print(f"\nper-step time, median of {args.rounds} interleaved rounds of {args.steps} steps ({WARMUP} warm-up), "
          f"logging every step")
    print(f"{'strategy':<9} {'none (ms)':>10} {'Lightning (ms)':>15} {'wse (ms)':>9} {'wse/Lightning':>14} "
          f"{'wse/none':>9}  targets")
    for strategy_name, median, _ in rows:
        none, theirs, ours = median["none"], median["lightning"], median["wse"]
        print(f"{strategy_name:<9} {none * 1e3:>10.3f} {theirs * 1e3:>15.3f} {ours * 1e3:>9.3f} {ours / theirs:>14.3f} "
              f"{ours / none:>9.3f}  <= 1.0, <= 1.03")
    print("\ntime per step inside the monitor's hooks (on_train_batch_start + on_train_batch_end; median of the steps, "
          "then of the rounds)")
    print(f"{'strategy':<9} {'Lightning (us)':>15} {'wse (us)':>9} {'wse/Lightning':>14}")
    for strategy_name, _, in_hooks in rows:
        theirs, ours = in_hooks["lightning"], in_hooks["wse"]
        print(f"{strategy_name:<9} {theirs * 1e6:>15.1f} {ours * 1e6:>9.1f} {ours / theirs:>14.3f}")


if __name__ == "__main__":
    main()
