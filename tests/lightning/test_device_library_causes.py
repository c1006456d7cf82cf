"""Under ``Trainer(strategy="wse")`` a violation made inside torch.optim, torchmetrics or torch.nn names that library and its fix."""
import os

import lightning as L
import pytest
import torch
from torchmetrics.classification import BinaryAccuracy

import wse.optim
from wse.device import GraphChangeError, HostSyncError, StaticGraphWarning
from wse.lightning import WSEStrategy
from wse.optim.weight_decay_scheduler import LinearWD

from .helpers import QUIET, TinyModel, loader


def line_of(marker: str) -> int:
    with open(__file__) as handle:
        found = [number for number, line in enumerate(handle, 1) if line.rstrip().endswith("#@" + marker)]
    assert len(found) == 1, f"marker {marker!r} on lines {found}"
    return found[0]


def fit(module, strategy="wse", steps: int = 5):
    trainer = L.Trainer(strategy=strategy, **{**QUIET, "max_steps": steps})
    trainer.fit(module, loader(batches=steps, drop_last=True))  #@fit
    return trainer


# -- torch.optim: a weight decay schedule that starts at 0 ------------------------------------


def torch_adamw_decay_from_zero(module):
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-2, weight_decay=0.0)
    return [optimizer], [LinearWD(optimizer, 0.0, 0.1, total_iters=10)]


def wse_adamw_decay_from_zero(module):
    optimizer = wse.optim.AdamW(module.parameters(), lr=1e-2, weight_decay=0.0)
    return [optimizer], [LinearWD(optimizer, 0.0, 0.1, total_iters=10)]


def test_torch_adamw_branching_on_weight_decay_names_torch_optim_and_wse_optim_adamw():
    with pytest.raises(GraphChangeError) as caught:
        fit(TinyModel(torch_adamw_decay_from_zero))
    error = caught.value
    assert error.step == 2  # the weight decay is 0 at step 1 only
    assert error.library.library == "torch.optim"
    assert error.library.location.code == "if weight_decay != 0:"
    message = str(error)
    assert message.startswith("step 2: torch.optim took another branch on a value it read on the host")
    assert "not your code" in message
    assert "the value read: False at the captured step 1, True at step 2" in message
    assert "Use wse.optim.AdamW" in message
    assert "control flow on the step number" not in message


def test_the_same_schedule_on_wse_optim_adamw_trains_clean_with_the_scheduled_values():
    trainer = fit(TinyModel(wse_adamw_decay_from_zero))
    report = trainer.strategy.device.report()
    assert (report.steps_verified, report.violations) == (3, {})
    # after 5 steps of a linear 0 -> 0.1 schedule over 10 steps
    assert float(trainer.optimizers[0].param_groups[0]["weight_decay"]) == pytest.approx(0.05)


# -- torchmetrics: argument checks in training_step --------------------------------------------


class WithAccuracy(TinyModel):
    def __init__(self, accuracy, class_predictions=False):
        super().__init__()
        self.accuracy = accuracy
        self.class_predictions = class_predictions

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)[:, 0]
        predictions = (logits > 0).long() if self.class_predictions else logits
        self.accuracy(predictions, (y[:, 0] > 0).long())  #@accuracy
        self.log("train_acc", self.accuracy)
        return torch.nn.functional.mse_loss(self.net(x), y)


def test_a_torchmetrics_metric_checking_its_inputs_names_validate_args():
    with pytest.raises(HostSyncError) as caught:
        fit(WithAccuracy(BinaryAccuracy()))
    error = caught.value
    assert (error.location.filename, error.location.lineno) == (__file__, line_of("accuracy"))
    assert error.library.library == "torchmetrics"
    assert "create the metric with validate_args=False" in str(error)


def test_under_warn_the_warning_names_the_library_too():
    with pytest.warns(StaticGraphWarning) as caught:
        fit(WithAccuracy(BinaryAccuracy()), WSEStrategy(check="warn"))
    warned = {w.message.error_type: w.message for w in caught if isinstance(w.message, StaticGraphWarning)}
    # its argument checks read the host at step 1; later, its branch on the predictions changes the graph
    assert set(warned) == {HostSyncError, GraphChangeError}
    assert all(warning.library.library == "torchmetrics" for warning in warned.values())
    assert "validate_args=False" in str(warned[HostSyncError])
    assert "torchmetrics took another branch on a value it read on the host" in str(warned[GraphChangeError])


def test_the_metric_without_argument_checks_on_class_predictions_trains_clean():
    trainer = fit(WithAccuracy(BinaryAccuracy(validate_args=False), class_predictions=True))
    assert trainer.strategy.device.report().violations == {}
    assert 0.0 <= trainer.callback_metrics["train_acc"].item() <= 1.0


# -- torch.nn: a transformer given a causal mask -----------------------------------------------


class CausalEncoder(L.LightningModule):
    def __init__(self, is_causal=None):
        super().__init__()
        torch.manual_seed(0)
        layer = torch.nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = torch.nn.Linear(4, 2)
        self.register_buffer("mask", torch.nn.Transformer.generate_square_subsequent_mask(2))
        self.is_causal = is_causal

    def training_step(self, batch, batch_idx):
        x, y = batch
        tokens = x.reshape(-1, 2, 2).repeat(1, 1, 2)
        hidden = self.encoder(tokens, mask=self.mask, is_causal=self.is_causal)  #@encoder
        return torch.nn.functional.mse_loss(self.head(hidden[:, -1]), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_transformer_encoder_testing_its_mask_names_is_causal():
    with pytest.raises(HostSyncError) as caught:
        fit(CausalEncoder())
    error = caught.value
    assert (error.location.filename, error.location.lineno) == (__file__, line_of("encoder"))
    assert error.library.library == "torch.nn"
    assert os.path.basename(error.library.location.filename) == "transformer.py"
    assert "pass is_causal=True with the causal mask" in str(error)


def test_the_encoder_told_that_its_mask_is_causal_trains_clean():
    trainer = fit(CausalEncoder(is_causal=True))
    assert trainer.strategy.device.report().violations == {}
