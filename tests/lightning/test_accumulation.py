"""With ``accumulate_grad_batches=k`` a device step is a whole update, from any resume point."""
import lightning as L
import pytest
from lightning.pytorch.callbacks import ModelCheckpoint

import wse.optim
from wse.device import ShapeChangeError
from wse.optim.lr_scheduler import CosineDecayLR

from .helpers import QUIET, TinyModel, loader

WITH_CHECKPOINTS = {k: v for k, v in QUIET.items() if k != "enable_checkpointing"}


class Accumulating(TinyModel):
    def __init__(self):
        super().__init__()

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        optimizer = wse.optim.AdamW(self.parameters(), lr=0.01, weight_decay=0.1)
        return [optimizer], [{"scheduler": CosineDecayLR(optimizer, 0.01, 0.001, total_iters=30), "interval": "step"}]


@pytest.mark.parametrize("accumulate", [2, 3])
def test_resuming_at_every_step_captures_the_same_whole_update(accumulate, tmp_path):
    # Six batches an epoch, a checkpoint after every optimizer step, two epochs.
    steps = 2 * 6 // accumulate
    every_step = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=1, save_top_k=-1)
    whole = L.Trainer(
        strategy="wse", max_steps=steps, accumulate_grad_batches=accumulate, callbacks=[every_step], **WITH_CHECKPOINTS
    )
    whole.fit(Accumulating(), loader(batches=6))
    captured = whole.strategy.device.graph
    # The captured step holds every batch of the update: `accumulate` forward passes.
    operations = [str(event[0]) for event in captured.events]
    assert operations.count("aten.mse_loss.default") == accumulate

    checkpoints = sorted(tmp_path.iterdir(), key=lambda path: int(path.stem.split("step=")[1]))
    assert len(checkpoints) == steps
    for checkpoint in checkpoints[:-1]:
        resumed = L.Trainer(strategy="wse", max_steps=steps + 2, accumulate_grad_batches=accumulate, **QUIET)
        resumed.fit(Accumulating(), loader(batches=6), ckpt_path=str(checkpoint))
        report = resumed.strategy.device.report()
        assert report.violations == {} and report.steps_verified >= 1, checkpoint.name
        assert resumed.strategy.device.graph.fingerprint == captured.fingerprint, checkpoint.name


def test_an_epoch_that_ends_in_a_shorter_update_says_so():
    trainer = L.Trainer(strategy="wse", max_epochs=1, accumulate_grad_batches=2, **QUIET)
    with pytest.raises(ShapeChangeError) as caught:
        trainer.fit(Accumulating(), loader(batches=5))
    message = str(caught.value)
    assert caught.value.step == 3
    assert "this update accumulates 1 batch(es), not accumulate_grad_batches=2: the epoch ends after 5 batches" in message
    assert "Make the number of batches per epoch a multiple of 2" in message
