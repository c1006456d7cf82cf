"""Two-process training with ``Trainer(strategy="wse", accelerator="cpu", devices=2)``.

Run as ``python -m tests.lightning.ddp_script OUT_DIR`` from the repository root; Lightning
starts the second process by running the same command. Each rank writes what it saw to
``OUT_DIR/rank{r}.json``; checkpoint writes are logged per rank.
"""
import json
import os
import sys

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

import wse  # noqa: F401  (registers strategy "wse")
import wse.optim
from wse.optim.lr_scheduler import CosineDecayLR, LinearLR, SequentialLR
from wse.optim.weight_decay_scheduler import CosineDecayWD

from .helpers import RecordHyperparameters, TinyModel, loader

MAX_STEPS = 6
CHECKPOINT_EVERY = 3


def configure(module):
    optimizer = wse.optim.AdamW(module.parameters(), lr=1.0, weight_decay=0.1)
    lr = SequentialLR(
        optimizer,
        [LinearLR(optimizer, 0.0, 0.01, total_iters=2), CosineDecayLR(optimizer, 0.01, 0.001, total_iters=4)],
        milestones=[2],
    )
    wd = CosineDecayWD(optimizer, initial_val=0.1, end_val=0.0, total_iters=MAX_STEPS)
    return [optimizer], [lr, wd]


class LoggedCheckpointIO(TorchCheckpointIO):
    """Writes checkpoints as usual and notes, per rank, that it did."""

    def __init__(self, out):
        super().__init__()
        self.out = out

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        super().save_checkpoint(checkpoint, path, storage_options)
        rank = int(os.environ.get("LOCAL_RANK", 0))
        with open(os.path.join(self.out, f"writes-rank{rank}.txt"), "a") as log:
            log.write(f"{os.path.basename(path)}\n")


class Report(L.Callback):
    def __init__(self, out, record):
        self.out, self.record = out, record

    def on_train_start(self, trainer, pl_module):
        self.wrapped = type(trainer.strategy.model).__name__
        self.backend = torch.distributed.get_backend()

    def on_train_end(self, trainer, pl_module):
        report = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "backend": self.backend,
            "wrapped": self.wrapped,
            "lrs": self.record.lrs(),
            "wds": self.record.wds(),
            "params": [p.detach().flatten().tolist() for p in pl_module.parameters()],
            "initial": [p.flatten().tolist() for p in TinyModel(configure).parameters()],
            "device": _device_summary(trainer.strategy.device.report()),
        }
        with open(os.path.join(self.out, f"rank{trainer.global_rank}.json"), "w") as file:
            json.dump(report, file)


def _device_summary(report):
    return {
        "steps": report.steps,
        "verified": report.steps_verified,
        "captured_step": report.captured_step,
        "graph_ops": report.graph_ops,
        "violations": report.violations,
    }


def main(out):
    record = RecordHyperparameters()
    trainer = L.Trainer(
        strategy="wse",
        accelerator="cpu",
        devices=2,
        max_steps=MAX_STEPS,
        plugins=[LoggedCheckpointIO(out)],
        callbacks=[
            record,
            Report(out, record),
            ModelCheckpoint(dirpath=os.path.join(out, "checkpoints"), every_n_train_steps=CHECKPOINT_EVERY, save_top_k=-1),
        ],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(TinyModel(configure), loader(batches=8))
    # Lightning leaves the process group to the interpreter's exit, where gloo's threads can
    # still be running and abort the process ("terminate called without an active exception").
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
