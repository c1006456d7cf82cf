"""Training time with WSDCheckpointCallback, in the run and with decay branches, over no callback.

    python benchmarks/bench_wsd_checkpoint.py [--rounds 5] [--steps 200] [--width 256]

A 3-layer MLP (AdamW, pytorch-accelerated's ``WSDLrScheduler``: 3 checkpoints, decay
ratio 0.1) trains ``--steps`` steps on the CPU. Three contenders: no callback (the
anchor), ``WSDCheckpointCallback()`` (the run decays itself; 3 pre-decay Lightning
checkpoints and 3 post-decay exports are written), and ``WSDCheckpointCallback(branch=True)``
(the run stays stable; each branch snapshots the run to host memory, runs the decay
steps, writes, and restores). The time is from ``on_train_start`` to ``on_train_end``;
the contenders alternate, round after round, and the table shows medians and their
ratios to the anchor. A branch run does ``sum(decay_steps)`` more optimizer updates, so
its ideal ratio is ``(steps + decay steps) / steps`` (printed beside it); what exceeds
that is the snapshots, the restores and the writes.
"""
import argparse
import logging
import statistics
import tempfile
import time
import warnings

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from wse.callbacks import WSDCheckpointCallback
from wse.compat.pytorch_accelerated import WSDLrScheduler


class MLP(L.LightningModule):
    def __init__(self, width: int, steps: int):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(32, width), torch.nn.GELU(), torch.nn.Linear(width, width),
                                       torch.nn.GELU(), torch.nn.Linear(width, 1))
        self.steps = steps

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=1e-3)
        scheduler = WSDLrScheduler(optimizer, total_steps=self.steps, num_checkpoints=3, decay_phase_ratio=0.1)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def lr_scheduler_step(self, scheduler, metric):
        scheduler.step()


class FitTimer(L.Callback):
    def on_train_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        self.seconds = time.perf_counter() - self.start


def fit_seconds(callback_kwargs, width, steps, data):
    timer = FitTimer()
    callbacks = [timer]
    with tempfile.TemporaryDirectory() as directory:
        if callback_kwargs is not None:
            callbacks.insert(0, WSDCheckpointCallback(save_dir=directory, **callback_kwargs))
        trainer = L.Trainer(max_steps=steps, callbacks=callbacks, accelerator="cpu", devices=1, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
        trainer.fit(MLP(width, steps), data)
    return timer.seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--width", type=int, default=256)
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)

    generator = torch.Generator().manual_seed(0)
    data = DataLoader(TensorDataset(torch.randn(2048, 32, generator=generator), torch.randn(2048, 1, generator=generator)),
                      batch_size=64, shuffle=True)
    contenders = {"no callback": None, "in the run": {}, "branches": {"branch": True}}
    times = {name: [] for name in contenders}
    fit_seconds(None, args.width, 20, data)  # warm up imports and kernels
    for _ in range(args.rounds):
        for name, kwargs in contenders.items():
            times[name].append(fit_seconds(kwargs, args.width, args.steps, data))

    decay_steps = sum(p.decay_steps for p in WSDLrScheduler(
        torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), total_steps=args.steps, num_checkpoints=3,
        decay_phase_ratio=0.1).decay_periods())
    anchor = statistics.median(times["no callback"])
    print(f"{args.steps} steps, width {args.width}, {args.rounds} rounds; median fit time and ratio to no callback")
    for name, values in times.items():
        median = statistics.median(values)
        note = f"  (ideal {(args.steps + decay_steps) / args.steps:.2f}: {decay_steps} decay steps more)" if name == "branches" else ""
        print(f"  {name:<12} {median * 1000:8.1f} ms  {median / anchor:5.2f}{note}")


if __name__ == "__main__":
    main()
