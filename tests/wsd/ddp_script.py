"""Two-process DDP training (gloo, CPU) with ``WSDCheckpointCallback(branch=True)``.

Run as ``python -m tests.wsd.ddp_script OUT_DIR`` from the repository root; Lightning
starts the second process by running the same command. Every checkpoint write is noted
per rank in ``OUT_DIR/writes-rank{r}.txt``; each rank reports what it saw in
``OUT_DIR/rank{r}.json``.
"""
import json
import os
import sys

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO

from wse.callbacks import WSDCheckpointCallback
from wse.wsd import files

from .helpers import QUIET, WSDModel, loader


def note_write(out, path):
    rank = int(os.environ.get("LOCAL_RANK", 0))
    with open(os.path.join(out, f"writes-rank{rank}.txt"), "a") as log:
        log.write(f"{os.path.basename(path)}\n")


class LoggedCheckpointIO(TorchCheckpointIO):
    def __init__(self, out):
        super().__init__()
        self.out = out

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        super().save_checkpoint(checkpoint, path, storage_options)
        note_write(self.out, path)


class Report(L.Callback):
    def __init__(self, out, wsd):
        self.out, self.wsd = out, wsd

    def on_train_end(self, trainer, pl_module):
        report = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "params": [p.detach().flatten().tolist() for p in pl_module.parameters()],
            "lr": trainer.optimizers[0].param_groups[0]["lr"],
            "written": [p.name for p in self.wsd.written],
        }
        with open(os.path.join(self.out, f"rank{trainer.global_rank}.json"), "w") as file:
            json.dump(report, file)


def main(out):
    save = files.atomic_torch_save

    def logged_save(obj, path):
        save(obj, path)
        note_write(out, path)

    files.atomic_torch_save = logged_save
    wsd = WSDCheckpointCallback(save_dir=os.path.join(out, "checkpoints"), branch=True)
    settings = {**QUIET, "devices": 2, "strategy": "ddp"}
    trainer = L.Trainer(max_steps=40, plugins=[LoggedCheckpointIO(out)], callbacks=[wsd, Report(out, wsd)], **settings)
    L.seed_everything(0, verbose=False)
    # 64 samples: 4 batches of 8 per process and epoch.
    trainer.fit(WSDModel(), loader(samples=64, shuffle=True))
    # Lightning leaves the process group to the interpreter's exit, where gloo's threads can
    # still be running and abort the process ("terminate called without an active exception").
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
