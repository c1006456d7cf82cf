"""Under strategy "wse" every scheduler steps exactly once per optimizer step."""
import warnings

import lightning as L
import pytest
import torch

import wse.optim
from wse.device import StaticGraphWarning
from wse.lightning import SchedulerStepError, WSEStrategy, WSEStrategyWarning
from wse.optim.lr_scheduler import CosineDecayLR, LinearLR, SequentialLR
from wse.optim.weight_decay_scheduler import CosineDecayWD, LinearWD

from .helpers import QUIET, RecordHyperparameters, TinyModel, cosine, linear, loader


def _warmup_cosine(module):
    optimizer = wse.optim.AdamW(module.parameters(), lr=1.0, weight_decay=0.1)
    lr = SequentialLR(
        optimizer,
        [LinearLR(optimizer, 0.0, 1e-2, total_iters=4), CosineDecayLR(optimizer, 1e-2, 1e-4, total_iters=8)],
        milestones=[4],
    )
    wd = CosineDecayWD(optimizer, initial_val=0.1, end_val=0.01, total_iters=12)
    # No interval given: Lightning's default is "epoch".
    return {"optimizer": optimizer, "lr_scheduler": lr}, wd


def _expected_lr(t):
    return linear(0.0, 1e-2, 4, t) if t < 4 else cosine(1e-2, 1e-4, 8, t - 4)


def test_lr_and_wd_follow_their_closed_forms_at_every_step_and_epoch_interval_is_overridden():
    def configure(module):
        config, wd = _warmup_cosine(module)
        return [config["optimizer"]], [config["lr_scheduler"], {"scheduler": wd, "interval": "epoch"}]

    record = RecordHyperparameters()
    trainer = L.Trainer(strategy="wse", max_steps=12, callbacks=[record], **QUIET)
    with pytest.warns(WSEStrategyWarning, match="CosineDecayWD \\(interval='epoch', frequency=1\\) will step every") as warnings:
        trainer.fit(TinyModel(configure), loader(batches=5))
    # Only the interval the user wrote is warned about, not Lightning's default for the bare SequentialLR.
    (warning,) = [w for w in warnings if issubclass(w.category, WSEStrategyWarning)]
    assert "SequentialLR" not in str(warning.message)
    assert len(record.values) == 12
    assert record.lrs() == pytest.approx([_expected_lr(t) for t in range(12)], rel=1e-12, abs=1e-15)
    assert record.wds() == pytest.approx([cosine(0.1, 0.01, 12, t) for t in range(12)], rel=1e-12)
    assert all(config.interval == "step" and config.frequency == 1 for config in trainer.lr_scheduler_configs)


def test_tensor_valued_schedules_follow_their_closed_forms():
    def configure(module):
        optimizer = wse.optim.SGD(module.parameters(), lr=1.0, momentum=0.9, weight_decay=0.1)
        lr = CosineDecayLR(optimizer, 0.5, 0.0, total_iters=6).enable_tensor_values()
        wd = LinearWD(optimizer, 0.1, 0.0, total_iters=6).enable_tensor_values()
        return [optimizer], [lr, wd]

    record = RecordHyperparameters()
    trainer = L.Trainer(strategy="wse", max_steps=6, callbacks=[record], **QUIET)
    with warnings.catch_warnings():
        warnings.simplefilter("error", WSEStrategyWarning)  # `[opt], [lr, wd]` asks for no interval
        trainer.fit(TinyModel(configure), loader(batches=4))
    # Switched to tensor values by the user, so left so after the fit.
    assert isinstance(trainer.optimizers[0].param_groups[0]["lr"], torch.Tensor)
    # float32 tensors: the closed form to float32 precision.
    assert record.lrs() == pytest.approx([cosine(0.5, 0.0, 6, t) for t in range(6)], rel=1e-6, abs=1e-7)
    assert record.wds() == pytest.approx([linear(0.1, 0.0, 6, t) for t in range(6)], rel=1e-6, abs=1e-7)


def test_torch_schedulers_with_epoch_interval_and_frequency_step_per_iteration():
    def configure(module):
        optimizer = torch.optim.SGD(module.parameters(), lr=0.8, weight_decay=0.5)
        step = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
        wd = LinearWD(optimizer, initial_val=0.5, end_val=0.0, total_iters=10)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": step, "interval": "epoch", "frequency": 3},
        }, wd

    def configure_both(module):
        config, wd = configure(module)
        return [config["optimizer"]], [config["lr_scheduler"], {"scheduler": wd, "interval": "step", "frequency": 2}]

    record = RecordHyperparameters()
    # StepLR writes Python floats, which the static-graph checks refuse (see tests/lightning/
    # test_device.py); this test is about when schedulers step.
    trainer = L.Trainer(strategy=WSEStrategy(check="off"), max_steps=7, callbacks=[record], **QUIET)
    with pytest.warns(WSEStrategyWarning, match="frequency=3.*frequency=2"):
        trainer.fit(TinyModel(configure_both), loader(batches=3))
    assert record.lrs() == pytest.approx([0.8 * 0.5 ** (t // 2) for t in range(7)], rel=1e-15)
    assert record.wds() == pytest.approx([linear(0.5, 0.0, 10, t) for t in range(7)], rel=1e-12, abs=1e-15)


def test_gradient_accumulation_steps_schedulers_once_per_optimizer_step():
    def configure(module):
        optimizer = torch.optim.SGD(module.parameters(), lr=1.0)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": LinearLR(optimizer, 1.0, 0.0, 10), "interval": "step"}}

    record = RecordHyperparameters()
    trainer = L.Trainer(strategy="wse", max_epochs=2, accumulate_grad_batches=3, callbacks=[record], **QUIET)
    trainer.fit(TinyModel(configure), loader(batches=6))
    # 2 epochs of 6 batches, one optimizer step per 3 batches.
    assert len(record.values) == 4
    assert record.lrs() == pytest.approx([linear(1.0, 0.0, 10, t) for t in range(4)])
    assert trainer.lr_scheduler_configs[0].scheduler.last_epoch == 4


class TwoOptimizers(L.LightningModule):
    """Manual optimization: the second optimizer steps on every other batch only."""

    def __init__(self, step_schedulers_too: bool = False):
        super().__init__()
        self.automatic_optimization = False
        self.a = torch.nn.Linear(4, 2)
        self.b = torch.nn.Linear(4, 2)
        self.step_schedulers_too = step_schedulers_too
        self.seen = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        first, second = self.optimizers()
        self.seen.append((first.param_groups[0]["lr"], first.param_groups[0]["weight_decay"], second.param_groups[0]["lr"]))
        loss = torch.nn.functional.mse_loss(self.a(x) + self.b(x), y)
        self.manual_backward(loss)
        first.step()
        first.zero_grad()
        if batch_idx % 2 == 1:
            second.step()
            second.zero_grad()
        if self.step_schedulers_too:
            for scheduler in self.lr_schedulers():
                scheduler.step()

    def configure_optimizers(self):
        first = torch.optim.AdamW(self.a.parameters(), lr=1.0, weight_decay=0.2)
        second = torch.optim.SGD(self.b.parameters(), lr=1.0)
        schedulers = [
            LinearLR(first, 1.0, 0.0, total_iters=10),
            LinearWD(first, 0.2, 0.0, total_iters=10),
            torch.optim.lr_scheduler.ExponentialLR(second, gamma=0.5),
        ]
        return [first, second], schedulers


def test_manual_optimization_steps_each_scheduler_with_its_own_optimizer():
    module = TwoOptimizers()
    # A second optimizer stepping every other batch is a graph change for the device.
    trainer = L.Trainer(strategy=WSEStrategy(check="off"), max_epochs=1, **QUIET)
    trainer.fit(module, loader(batches=6))
    expected = [(linear(1.0, 0.0, 10, t), linear(0.2, 0.0, 10, t), 0.5 ** (t // 2)) for t in range(6)]
    flat = [value for values in module.seen for value in values]
    assert flat == pytest.approx([value for values in expected for value in values], rel=1e-12, abs=1e-15)
    last_epochs = [config.scheduler.last_epoch for config in trainer.lr_scheduler_configs]
    assert last_epochs == [6, 6, 3]


def test_manual_optimization_refuses_schedulers_stepped_by_hand():
    trainer = L.Trainer(strategy=WSEStrategy(check="off"), max_epochs=1, **QUIET)
    with pytest.raises(SchedulerStepError, match=r"LinearLR.step\(\) was called at .*test_scheduling.py:\d+ in training_step.*in manual optimization too.*\(optimizer 0 \(AdamW\)\).*Remove the `scheduler.step\(\)` call"):
        trainer.fit(TwoOptimizers(step_schedulers_too=True), loader(batches=4))


def test_automatic_optimization_refuses_a_skipped_scheduler_step():
    class SkipsSchedulers(TinyModel):
        def lr_scheduler_step(self, scheduler, metric):
            if self.global_step % 2 == 0:
                scheduler.step()

    def configure(module):
        optimizer = torch.optim.SGD(module.parameters(), lr=1.0)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": LinearLR(optimizer, 1.0, 0.0, 10), "interval": "step"}}

    trainer = L.Trainer(strategy="wse", max_steps=5, **QUIET)
    with pytest.raises(SchedulerStepError, match=r"LinearLR of SGD advanced 0 time\(s\) instead of once when `LightningModule.lr_scheduler_step`"):
        trainer.fit(SkipsSchedulers(configure), loader(batches=5))


def _plateau(module):
    optimizer = torch.optim.SGD(module.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "loss"}}


def test_reduce_lr_on_plateau_is_refused():
    trainer = L.Trainer(strategy="wse", max_steps=2, **QUIET)
    with pytest.raises(SchedulerStepError, match="ReduceLROnPlateau.*closed-form schedule"):
        trainer.fit(TinyModel(_plateau), loader())


def test_reduce_lr_on_plateau_is_left_to_lightning_when_told_to_warn():
    class LogsLoss(TinyModel):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            self.log("loss", loss)
            return loss

    # It writes Python numbers, so the static-graph checks report it at setup too (warn: go on).
    trainer = L.Trainer(strategy=WSEStrategy(strict="warn", check="warn"), max_epochs=2, **QUIET)
    with pytest.warns(WSEStrategyWarning, match="ReduceLROnPlateau"), pytest.warns(
        StaticGraphWarning, match="torch.optim.lr_scheduler.ReduceLROnPlateau .* writes its value"
    ):
        trainer.fit(LogsLoss(_plateau), loader())
    assert trainer.lr_scheduler_configs[0].interval == "epoch"
