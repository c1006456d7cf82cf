"""Registering wse callbacks: LightningCLI class paths, and the opt-in entry point Lightning calls for every Trainer."""
import sys
from importlib.metadata import entry_points

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import LearningRateMonitor as LightningMonitor
from lightning.pytorch.callbacks import ModelCheckpoint

from wse.callbacks import LearningRateMonitor

from .lr_monitor_helpers import QUIET, RecordingLogger, data


class CliModule(L.LightningModule):
    """A module LightningCLI can build from its signature (no arguments)."""

    def __init__(self, lr: float = 0.1):
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)
        self.lr = lr

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.layer.parameters(), lr=self.lr, weight_decay=0.05)

    def train_dataloader(self):
        return data(batches=2)


def _cli(args, monkeypatch):
    pytest.importorskip("jsonargparse")
    from lightning.pytorch.cli import LightningCLI

    monkeypatch.setattr(sys, "argv", ["train.py"])  # only `args` is parsed
    return LightningCLI(CliModule, args=args, run=False, save_config_callback=None)


CLI_TRAINER = ["--trainer.max_steps=2", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
               "--trainer.enable_checkpointing=false", "--trainer.log_every_n_steps=1"]


def test_lightning_cli_command_line_class_path(tmp_path, monkeypatch):
    cli = _cli(CLI_TRAINER + [
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.callbacks+=wse.callbacks.LearningRateMonitor",
        "--trainer.callbacks.logging_interval=step",
        "--trainer.callbacks.log_momentum=true",
    ], monkeypatch)
    (monitor,) = [c for c in cli.trainer.callbacks if isinstance(c, LearningRateMonitor)]
    assert (monitor.logging_interval, monitor.log_momentum, monitor.log_weight_decay) == ("step", True, True)
    cli.trainer.fit(cli.model)
    assert monitor.lrs == {"lr-AdamW": [0.1, 0.1]}
    assert monitor.last_weight_decay_values == {"lr-AdamW-weight_decay": 0.05}


def test_lightning_cli_yaml_class_path(tmp_path, monkeypatch):
    config = tmp_path / "config.yaml"
    config.write_text(
        "trainer:\n"
        "  callbacks:\n"
        "    - class_path: wse.callbacks.LearningRateMonitor\n"
        "      init_args:\n"
        "        logging_interval: epoch\n"
        "        log_weight_decay: false\n"
        "        log_plan: true\n"
    )
    cli = _cli([f"--config={config}"] + CLI_TRAINER, monkeypatch)
    (monitor,) = [c for c in cli.trainer.callbacks if isinstance(c, LearningRateMonitor)]
    assert (monitor.logging_interval, monitor.log_weight_decay, monitor.log_plan) == ("epoch", False, True)


def test_a_bad_argument_on_the_command_line_is_refused(monkeypatch):
    with pytest.raises(SystemExit):
        _cli(CLI_TRAINER + ["--trainer.callbacks+=wse.callbacks.LearningRateMonitor", "--trainer.callbacks.logging_interval=batch"], monkeypatch)


# -- the entry point --------------------------------------------------------------------


def _factory(group="lightning.pytorch.callbacks_factory"):
    (entry,) = [e for e in entry_points(group=group) if e.value.startswith("wse.")]
    return entry.load()


def test_the_installed_package_registers_a_factory_in_both_lightning_groups():
    for group in ("lightning.pytorch.callbacks_factory", "pytorch_lightning.callbacks_factory"):
        assert [e.value for e in entry_points(group=group) if e.name == "wse"], group


def test_the_factory_adds_nothing_unless_asked(monkeypatch):
    monkeypatch.delenv("WSE_CALLBACKS", raising=False)
    assert _factory()() == []
    monkeypatch.setenv("WSE_CALLBACKS", " , ")
    assert _factory()() == []
    trainer = L.Trainer(**dict(QUIET, max_steps=1, logger=False))
    assert not any(isinstance(c, LearningRateMonitor) for c in trainer.callbacks)


def test_the_factory_adds_the_monitor_to_every_trainer_when_asked(monkeypatch):
    monkeypatch.setenv("WSE_CALLBACKS", "lr_monitor")
    (monitor,) = _factory()()
    assert isinstance(monitor, LearningRateMonitor)
    logger = RecordingLogger()
    trainer = L.Trainer(**dict(QUIET, max_steps=2, logger=logger))
    assert sum(isinstance(c, LearningRateMonitor) for c in trainer.callbacks) == 1
    trainer.fit(_SgdModule(), data(batches=2))
    assert logger.series("lr-SGD") == {0: 0.1, 1: 0.1}


def test_an_unknown_name_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("WSE_CALLBACKS", "lr_monitor,lr_moniter")
    with pytest.raises(ValueError, match=r"unknown callbacks \['lr_moniter'\]; known: \['lr_monitor'\]"):
        L.Trainer(**dict(QUIET, max_steps=1, logger=False))


class _SgdModule(CliModule):
    def configure_optimizers(self):
        return torch.optim.SGD(self.layer.parameters(), lr=0.1)


@pytest.mark.parametrize("user_monitor", [LearningRateMonitor, LightningMonitor])
def test_a_user_monitor_and_the_factory_monitor_save_checkpoints_and_log_once(monkeypatch, tmp_path, user_monitor):
    monkeypatch.setenv("WSE_CALLBACKS", "lr_monitor")
    logger = RecordingLogger()
    options = dict(QUIET, enable_checkpointing=True, max_steps=2, logger=logger, default_root_dir=tmp_path)
    trainer = L.Trainer(**options, callbacks=[user_monitor(), ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=1)])
    assert sum(type(c).__name__ == "LearningRateMonitor" for c in trainer.callbacks) == 2
    trainer.fit(_SgdModule(), data(batches=2))
    assert logger.series("lr-SGD") == {0: 0.1, 1: 0.1}
    # Only the user's monitor logged: the factory's would add weight decay beside Lightning's.
    expected = {"lr-SGD", "lr-SGD-weight_decay"} if user_monitor is LearningRateMonitor else {"lr-SGD"}
    assert logger.names() == expected
    if user_monitor is LearningRateMonitor:
        assert [step for step, _ in logger.calls] == [0, 1]
    # Both monitors in a trainer that restores a checkpoint.
    trainer = L.Trainer(**dict(options, max_steps=3), callbacks=[user_monitor()])
    trainer.fit(_SgdModule(), data(batches=3), ckpt_path=str(tmp_path / "epoch=0-step=2.ckpt"))
    assert trainer.global_step == 3


def test_pytorch_lightning_gets_pytorch_lightning_callbacks(monkeypatch, tmp_path):
    """The ``pytorch_lightning`` copy of Lightning has its own Callback class; its Trainer gets instances of it."""
    pl = pytest.importorskip("pytorch_lightning")
    from pytorch_lightning.loggers import CSVLogger

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 2)

        def training_step(self, batch, batch_idx):
            return torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.3)

    monkeypatch.setenv("WSE_CALLBACKS", "lr_monitor")
    trainer = pl.Trainer(**dict(QUIET, max_steps=2, logger=CSVLogger(str(tmp_path))))
    (monitor,) = [c for c in trainer.callbacks if isinstance(c, LearningRateMonitor)]
    assert isinstance(monitor, pl.Callback)
    trainer.fit(Module(), data(batches=2))
    assert monitor.lrs == {"lr-SGD": [0.3, 0.3]}
