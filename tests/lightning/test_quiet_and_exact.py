"""A clean fit says two lines; the check mode changes neither the numbers nor what the user put in the param groups."""
import collections
import logging
import warnings

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

import wse.optim
from wse.lightning import DeviceOptions, WSEStrategy, WSEStrategyWarning
from wse.optim.lr_scheduler import CosineDecayLR, LinearLR, SequentialLR
from wse.optim.weight_decay_scheduler import CosineDecayWD

from .helpers import QUIET, RecordHyperparameters, TinyModel, cosine, loader


class ReadmeModel(TinyModel):
    """The README's LightningModule: ``return [optimizer], [lr, wd]``."""

    def __init__(self, optimizer_class=None):
        super().__init__()
        self.optimizer_class = optimizer_class or wse.optim.AdamW

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        optimizer = self.optimizer_class(self.parameters(), lr=1e-2, weight_decay=0.1)
        lr = SequentialLR(
            optimizer,
            [LinearLR(optimizer, 0.0, 1e-2, total_iters=2), CosineDecayLR(optimizer, 1e-2, 1e-4, total_iters=8)],
            milestones=[2],
        )
        wd = CosineDecayWD(optimizer, initial_val=0.1, end_val=0.01, total_iters=10)
        return [optimizer], [lr, wd]


class _Records(logging.Handler):
    """Collects each log record once, from every logger it is attached to."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.records = []

    def emit(self, record):
        if all(record is not seen for seen in self.records):
            self.records.append(record)


def _output_of_a_fit(strategy, capfd, module=None, **options):
    """Every line a user sees (Lightning's own progress bar and model summary off).

    Printed text, log records at INFO level and above (Lightning logs to its own
    handler, which a test's output capture does not see), and warnings.
    """
    records = _Records()
    loggers = [logging.getLogger(), logging.getLogger("lightning.pytorch"), logging.getLogger("lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers[1:]:
        logger.setLevel(logging.INFO)  # Lightning's default (another test may have quietened it)
    for logger in loggers:
        logger.addHandler(records)
    capfd.readouterr()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer = L.Trainer(strategy=strategy, **{**QUIET, "max_steps": 8, **options})
            trainer.fit(module or ReadmeModel(), loader(batches=4, drop_last=True))
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeHandler(records)
            logger.setLevel(level)
    out, err = capfd.readouterr()
    logged = [line for record in records.records for line in record.getMessage().splitlines()]
    return (out + err).splitlines() + logged + [f"{w.category.__name__}: {w.message}" for w in caught]


def test_a_clean_fit_says_one_line_at_the_start_and_one_at_the_end(capfd):
    # What Lightning itself prints (GPU/TPU lines, tips, "`Trainer.fit` stopped") is the same under
    # both strategies; what strategy "wse" adds is counted as the difference.
    lightning = collections.Counter(_output_of_a_fit("auto", capfd))
    wse_lines = collections.Counter(_output_of_a_fit("wse", capfd))
    added = list((wse_lines - lightning).elements())
    assert len(added) == 2, added
    start, end = sorted(added, key=lambda line: "steps," in line)
    assert start == "wse: 1 process on cpu; check='strict': step 1 captured, steps 2-4 verified; violations raise."
    assert end.startswith("wse") and "8 steps" in end and "no violations" in end and len(end) < 100


def test_interval_is_warned_about_only_where_the_user_asked_for_another_in_automatic_optimization():
    def explicit_epoch(module):
        optimizer = wse.optim.SGD(module.parameters(), lr=0.1)
        return [optimizer], [{"scheduler": CosineDecayLR(optimizer, 0.1, 0.0, 10), "interval": "epoch"}]

    class Manual(TinyModel):
        def __init__(self):
            super().__init__(explicit_epoch)
            self.automatic_optimization = False

        def training_step(self, batch, batch_idx):
            optimizer = self.optimizers()
            self.manual_backward(super().training_step(batch, batch_idx))
            optimizer.step()
            optimizer.zero_grad()

    with warnings.catch_warnings():
        warnings.simplefilter("error", WSEStrategyWarning)
        L.Trainer(strategy="wse", max_steps=2, **QUIET).fit(ReadmeModel(), loader())  # Lightning's default "epoch"
        L.Trainer(strategy="wse", max_steps=2, **QUIET).fit(Manual(), loader())  # manual: `interval` is ignored
    with pytest.warns(WSEStrategyWarning, match=r"CosineDecayLR \(interval='epoch', frequency=1\) will step every"):
        L.Trainer(strategy="wse", max_steps=2, **QUIET).fit(TinyModel(explicit_epoch), loader())


def test_the_start_line_names_the_captured_step():
    assert DeviceOptions().describe_checks(capture_step=2) == (
        "check='strict': step 2 captured (DDP re-buckets the gradients during step 1, which runs unchecked), "
        "steps 3-5 verified; violations raise"
    )


def _fit_with_a_checkpoint(check, tmp_path, module):
    record = RecordHyperparameters()
    checkpoint = ModelCheckpoint(dirpath=tmp_path / check, every_n_train_steps=4, save_top_k=-1)
    options = {k: v for k, v in QUIET.items() if k != "enable_checkpointing"}
    trainer = L.Trainer(strategy=WSEStrategy(check=check), max_steps=8, callbacks=[record, checkpoint], **options)
    trainer.fit(module, loader(batches=4, drop_last=True))
    saved = torch.load(tmp_path / check / "epoch=0-step=4.ckpt", weights_only=True)
    return trainer, record, saved


def _assert_same(a, b, where):
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{index}]")
    else:
        assert a == b, where


def test_after_a_strict_fit_and_in_its_checkpoints_the_param_groups_hold_the_users_floats(tmp_path):
    strict, _, strict_checkpoint = _fit_with_a_checkpoint("strict", tmp_path, ReadmeModel())
    off, _, off_checkpoint = _fit_with_a_checkpoint("off", tmp_path, ReadmeModel())
    for trainer in (strict, off):
        group = trainer.optimizers[0].param_groups[0]
        assert type(group["lr"]) is float and type(group["weight_decay"]) is float
        assert group["weight_decay"] == pytest.approx(cosine(0.1, 0.01, 10, 8), rel=1e-12)
        assert not any(config.scheduler.uses_tensor_values for config in trainer.lr_scheduler_configs)
    # The checkpoint written during the strict fit is the one written without checks.
    for key in ("optimizer_states", "lr_schedulers"):
        _assert_same(strict_checkpoint[key], off_checkpoint[key], key)


def test_lightnings_learning_rate_monitor_sees_floats_and_warns_nothing(tmp_path):
    monitor = LearningRateMonitor(logging_interval="step")
    options = {k: v for k, v in QUIET.items() if k != "logger"}
    trainer = L.Trainer(
        strategy="wse", max_steps=8, callbacks=[monitor], logger=CSVLogger(tmp_path), log_every_n_steps=1, **options
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(ReadmeModel(), loader(batches=4, drop_last=True))
    assert not [w for w in caught if "lr_monitor" in w.filename], [str(w.message) for w in caught]
    # Each step's own value, as a float (not one tensor updated in place, seen eight times).
    lrs = monitor.lrs["lr-AdamW"]
    assert all(type(lr) is float for lr in lrs)
    expected = [0.0, 5e-3] + [cosine(1e-2, 1e-4, 8, t - 2) for t in range(2, 8)]
    assert lrs == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("optimizer_class", [wse.optim.SGD, wse.optim.RMSprop])
def test_the_check_mode_does_not_change_the_numbers(optimizer_class, tmp_path):
    strict_model, off_model = ReadmeModel(optimizer_class), ReadmeModel(optimizer_class)
    _, strict_record, _ = _fit_with_a_checkpoint("strict", tmp_path, strict_model)
    _, off_record, _ = _fit_with_a_checkpoint("off", tmp_path, off_model)
    # The same values reach the optimizer (float64 tensors under "strict", floats under "off")...
    assert strict_record.values == off_record.values
    # ...and it computes the same numbers with them.
    for p, q in zip(strict_model.parameters(), off_model.parameters()):
        assert torch.equal(p, q)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("optimizer_class", [wse.optim.SGD, wse.optim.RMSprop, wse.optim.Adam])
def test_the_check_mode_does_not_change_the_numbers_on_cuda(optimizer_class):
    # CUDA's kernels round in their own order (addcdiv: value * (n / d)); the kernels follow it.
    models = {check: ReadmeModel(optimizer_class) for check in ("strict", "off")}
    for check, model in models.items():
        options = {**QUIET, "accelerator": "gpu", "max_steps": 8}
        L.Trainer(strategy=WSEStrategy(check=check), **options).fit(model, loader(batches=4, drop_last=True))
    for p, q in zip(models["strict"].parameters(), models["off"].parameters()):
        assert torch.equal(p, q)
