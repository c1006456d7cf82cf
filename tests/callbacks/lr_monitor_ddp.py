"""Two processes, ``strategy="wse"``, one ``LearningRateMonitor``: run as ``python -m tests.callbacks.lr_monitor_ddp OUT``.

Each rank writes what its logger was given and what its monitor put in
``callback_metrics`` to ``OUT/rank{r}.json``.
"""
import json
import os
import sys

import torch
import lightning as L

import wse  # noqa: F401  (registers strategy "wse")
from wse.callbacks import LearningRateMonitor

from .lr_monitor_helpers import QUIET, Module, RecordingLogger, data
from .test_lr_monitor import tagged_lr_and_wd

STEPS = 4


class Report(L.Callback):
    def __init__(self, out, logger):
        self.out, self.logger = out, logger

    def on_train_end(self, trainer, pl_module):
        report = {
            "rank": trainer.global_rank,
            "calls": self.logger.calls,
            "callback_metrics": {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("lr-")},
            "violations": trainer.strategy.device.report().violations,
        }
        with open(os.path.join(self.out, f"rank{trainer.global_rank}.json"), "w") as file:
            json.dump(report, file)


def main(out):
    logger = RecordingLogger()
    options = dict(QUIET, devices=2, strategy="wse", max_steps=STEPS, logger=logger)
    trainer = L.Trainer(**options, callbacks=[LearningRateMonitor(), Report(out, logger)])
    trainer.fit(Module(tagged_lr_and_wd), data(batches=2 * STEPS))
    # Lightning leaves the process group to the interpreter's exit, where gloo's threads can
    # still be running and abort the process ("terminate called without an active exception").
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
