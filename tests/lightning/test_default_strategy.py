"""wse weight-decay and generic schedulers work under Lightning's default strategy too."""
import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger

from wse.optim.lr_scheduler import LinearLR
from wse.optim.scheduler import LinearScheduler
from wse.optim.weight_decay_scheduler import CosineDecayWD

from .helpers import QUIET, RecordHyperparameters, TinyModel, cosine, linear, loader


class MomentumSchedule(LinearScheduler):
    """A user's scheduler of another param-group key, built on the generic ``Scheduler``."""

    param_group_key = "momentum"


def test_wd_scheduler_under_the_default_strategy_with_lightnings_own_monitor(tmp_path):
    def configure(module):
        optimizer = torch.optim.AdamW(module.parameters(), lr=0.1, weight_decay=0.1)
        wd = CosineDecayWD(optimizer, initial_val=0.1, end_val=0.0, total_iters=10)
        lr = LinearLR(optimizer, 0.1, 0.0, total_iters=10)
        # The WD scheduler per step, the LR scheduler with Lightning's default (per epoch).
        return [optimizer], [{"scheduler": wd, "interval": "step"}, lr]

    record = RecordHyperparameters()
    options = {k: v for k, v in QUIET.items() if k != "logger"}
    monitor = LearningRateMonitor(logging_interval="step", log_weight_decay=True)
    trainer = L.Trainer(
        max_steps=8, logger=CSVLogger(tmp_path), log_every_n_steps=1, callbacks=[record, monitor], **options
    )
    trainer.fit(TinyModel(configure), loader(batches=5))
    assert type(trainer.strategy).__name__ == "SingleDeviceStrategy"
    assert record.wds() == pytest.approx([cosine(0.1, 0.0, 10, t) for t in range(8)], rel=1e-12, abs=1e-15)
    # Lightning's epoch interval is left alone by its own strategy: one LR step per 5 batches.
    assert record.lrs() == pytest.approx([linear(0.1, 0.0, 10, t // 5) for t in range(8)], rel=1e-12)
    (metrics,) = tmp_path.rglob("metrics.csv")
    assert "weight_decay" in metrics.read_text().splitlines()[0]


def test_generic_scheduler_of_another_key_under_the_default_strategy():
    def configure(module):
        optimizer = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9)
        momentum = MomentumSchedule(optimizer, initial_val=0.9, end_val=0.5, total_iters=4)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": momentum, "interval": "step"}}

    seen = []

    class RecordMomentum(L.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            seen.append(optimizer.param_groups[0]["momentum"])

    trainer = L.Trainer(max_steps=6, callbacks=[RecordMomentum()], **QUIET)
    trainer.fit(TinyModel(configure), loader(batches=5))
    assert seen == pytest.approx([linear(0.9, 0.5, 4, t) for t in range(6)], rel=1e-12)


def test_wd_scheduler_checkpoint_round_trip_under_the_default_strategy(tmp_path):
    def configure(module):
        optimizer = torch.optim.AdamW(module.parameters(), lr=0.1, weight_decay=0.1)
        wd = CosineDecayWD(optimizer, initial_val=0.1, end_val=0.0, total_iters=10)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": wd, "interval": "step"}}

    trainer = L.Trainer(max_steps=5, **QUIET)
    trainer.fit(TinyModel(configure), loader(batches=5))
    trainer.save_checkpoint(tmp_path / "five.ckpt")

    record = RecordHyperparameters()
    resumed = L.Trainer(max_steps=8, callbacks=[record], **QUIET)
    resumed.fit(TinyModel(configure), loader(batches=5), ckpt_path=tmp_path / "five.ckpt")
    assert record.wds() == pytest.approx([cosine(0.1, 0.0, 10, t) for t in range(5, 8)], rel=1e-12)
