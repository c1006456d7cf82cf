"""What the strategy knows is wrong, it reports where the user can act on it: at setup, or at the line."""
import warnings

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import StochasticWeightAveraging

import wse.optim
from wse.device import HostHyperparameterError, StaticGraphWarning
from wse.lightning import SchedulerStepError, WSEStrategy, WSEStrategyWarning
from wse.optim.lr_scheduler import ConstantLR, CosineDecayLR

from .helpers import QUIET, RecordHyperparameters, TinyModel, loader, rank_zero_lines


def line_of(marker: str) -> int:
    with open(__file__) as handle:
        found = [number for number, line in enumerate(handle, 1) if line.rstrip().endswith("#@" + marker)]
    assert len(found) == 1, f"marker {marker!r} on lines {found}"
    return found[0]


class StepLRModel(TinyModel):
    """An ordinary module with torch's StepLR, whose first change comes after the verified steps."""

    def __init__(self):
        super().__init__()

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=6)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def test_a_host_side_scheduler_is_reported_at_setup_whatever_the_verified_steps_see():
    trainer = L.Trainer(strategy="wse", max_steps=6, **QUIET)
    with pytest.raises(HostHyperparameterError) as caught:
        trainer.fit(StepLRModel(), loader(batches=6, drop_last=True))  #@fit
    assert trainer.global_step == 0, "refused at setup, before any step"
    error = caught.value
    assert (error.step, error.location.filename, error.location.lineno) == (0, __file__, line_of("fit"))
    message = str(error)
    assert "torch.optim.lr_scheduler.StepLR (scheduler of SGD) writes its value into the param groups" in message
    assert "Use its namesake wse.optim.lr_scheduler.StepLR(optimizer, initial_learning_rate, step_size, gamma)" in message

    # check="warn": said once, at setup, and again in the line at the end; training goes on.
    strategy = WSEStrategy(check="warn")
    with rank_zero_lines() as lines, pytest.warns(StaticGraphWarning, match="StepLR") as caught_warnings:
        L.Trainer(strategy=strategy, max_steps=6, **QUIET).fit(StepLRModel(), loader(batches=6, drop_last=True))
    assert len([w for w in caught_warnings if issubclass(w.category, StaticGraphWarning)]) == 1
    assert strategy.device.step_count == 6
    assert "at setup: host-side scheduler(s) StepLR" in lines[-1]


class SWAModel(TinyModel):
    def __init__(self):
        super().__init__()

    def configure_optimizers(self):
        optimizer = wse.optim.SGD(self.parameters(), lr=0.1)
        return [optimizer], [{"scheduler": CosineDecayLR(optimizer, 0.1, 0.01, total_iters=20), "interval": "step"}]


def test_stochastic_weight_averaging_is_refused_at_setup_and_any_scheduler_swap_during_the_fit():
    trainer = L.Trainer(strategy="wse", max_epochs=3, callbacks=[StochasticWeightAveraging(swa_lrs=0.05)], **QUIET)
    with pytest.raises(SchedulerStepError, match="StochasticWeightAveraging replaces the schedulers.*WeightAveraging"):
        trainer.fit(SWAModel(), loader(batches=2))
    assert trainer.global_step == 0

    class SwapsAtEpochOne(L.Callback):
        """Replaces the scheduler at the start of epoch 1, as SWA does."""

        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 1:
                optimizer = trainer.optimizers[0]
                self.old = trainer.lr_scheduler_configs[0].scheduler
                replacement = ConstantLR(optimizer, 0.05, total_iters=100)
                trainer.lr_scheduler_configs[0] = type(trainer.lr_scheduler_configs[0])(replacement, interval="step")

    trainer = L.Trainer(strategy="wse", max_epochs=3, callbacks=[SwapsAtEpochOne()], **QUIET)
    with pytest.raises(SchedulerStepError, match=r"trainer.lr_scheduler_configs was changed during the fit \(replaced: CosineDecayLR; added: ConstantLR\)"):
        trainer.fit(SWAModel(), loader(batches=2))
    assert trainer.global_step == 2, "refused at the first batch after the swap"

    # strict="warn": the swap is honoured: the old scheduler stops, the new one steps as Lightning steps it.
    swap, record = SwapsAtEpochOne(), RecordHyperparameters()
    strategy = WSEStrategy(strict="warn", check="off")
    with pytest.warns(WSEStrategyWarning, match="changed during the fit"):
        L.Trainer(strategy=strategy, max_epochs=3, callbacks=[swap, record], **QUIET).fit(SWAModel(), loader(batches=2))
    assert swap.old.last_epoch == 2
    assert record.lrs()[2:] == [0.05] * 4


class TwoAdamW(L.LightningModule):
    """Manual optimization with two optimizers of one class, stepping a scheduler as Lightning's docs show."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.generator, self.critic = torch.nn.Linear(4, 2), torch.nn.Linear(4, 2)

    def training_step(self, batch, batch_idx):
        x, y = batch
        generator_optimizer, critic_optimizer = self.optimizers()
        loss = torch.nn.functional.mse_loss(self.generator(x) + self.critic(x), y)
        self.manual_backward(loss)
        generator_optimizer.step()
        critic_optimizer.step()
        generator_optimizer.zero_grad()
        critic_optimizer.zero_grad()
        _, critic_scheduler = self.lr_schedulers()
        critic_scheduler.step()  #@manual-step

    def configure_optimizers(self):
        generator = torch.optim.AdamW(self.generator.parameters(), lr=0.01)
        critic = torch.optim.AdamW(self.critic.parameters(), lr=0.02)
        return [generator, critic], [CosineDecayLR(generator, 0.01, 0.0, 10), CosineDecayLR(critic, 0.02, 0.0, 10)]


def test_manual_scheduler_step_is_reported_at_its_line_with_the_optimizer_named():
    trainer = L.Trainer(strategy="wse", max_steps=3, **QUIET)
    with pytest.raises(SchedulerStepError) as caught:
        trainer.fit(TwoAdamW(), loader(drop_last=True))
    message = str(caught.value)
    assert f"CosineDecayLR.step() was called at {__file__}:{line_of('manual-step')}" in message
    assert "steps every scheduler itself, in manual optimization too" in message
    assert "(optimizer 1 (AdamW))" in message and "Remove the `scheduler.step()` call" in message
    # Raised by the call itself: the traceback's last frame of this file is that line.
    frames = [frame for frame in caught.traceback if str(frame.path) == __file__]
    assert frames[-1].lineno + 1 == line_of("manual-step")

    # strict="warn": said once, the call skipped, so the schedule stays one step per optimizer step.
    module = TwoAdamW()
    with pytest.warns(WSEStrategyWarning, match="The call was skipped") as caught_warnings:
        trainer = L.Trainer(strategy=WSEStrategy(strict="warn"), max_steps=4, **QUIET)
        trainer.fit(module, loader(drop_last=True))
    assert len([w for w in caught_warnings if issubclass(w.category, WSEStrategyWarning)]) == 1
    # max_steps counts both optimizers' steps: two batches, each optimizer stepped twice.
    assert trainer.strategy.device.step_count == 2
    assert [config.scheduler.last_epoch for config in trainer.lr_scheduler_configs] == [2, 2]


def test_reduce_lr_on_plateau_says_what_is_wrong_and_what_to_use():
    def configure(module):
        optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": plateau, "monitor": "val_loss"}}

    trainer = L.Trainer(strategy="wse", max_steps=2, **QUIET)
    with pytest.raises(SchedulerStepError) as caught:
        trainer.fit(TinyModel(configure), loader())
    message = str(caught.value)
    assert "is a ReduceLROnPlateau scheduler" not in message
    assert message.startswith("ReduceLROnPlateau steps on a monitored metric, which exists only after validation")
    assert "wse.optim.lr_scheduler" in message and "strict='warn'" in message
