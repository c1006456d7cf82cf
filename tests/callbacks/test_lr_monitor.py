"""wse.callbacks.LearningRateMonitor in fits: closed-form values at every step, the strict device, plans, bad input."""
import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

import wse
import wse.optim
from wse.callbacks import LearningRateMonitor
from wse.device import HostSyncError
from wse.optim.lr_scheduler import LinearLR
from wse.optim.weight_decay_scheduler import CosineDecayWD

from .lr_monitor_helpers import QUIET, Module, RecordingLogger, data, fit

STEPS = 10
REPOSITORY = Path(__file__).resolve().parents[2]


def lr_at(i):
    return 0.1 + (0.01 - 0.1) * min(i, 8) / 8


def wd_at(i):
    return 0.1 * (1 + math.cos(math.pi * min(i, 6) / 6)) / 2


def tagged_lr_and_wd(module):
    optimizer = wse.optim.AdamW(
        [{"params": module.first.parameters(), "tags": "decay"}, {"params": module.second.parameters(), "tags": "no_decay"}],
        lr=1.0, weight_decay=0.0,
    )
    lr = LinearLR(optimizer, initial_learning_rate=0.1, end_learning_rate=0.01, total_iters=8)
    wd = CosineDecayWD(optimizer, initial_val=0.1, end_val=0.0, total_iters=6, param_group_tags="decay")
    return [optimizer], [{"scheduler": lr, "interval": "step"}, {"scheduler": wd, "interval": "step"}]


class RecordUsedValues(L.Callback):
    """What the optimizer used in each step, copied on the device right before it steps."""

    def __init__(self):
        self.copies = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.copies.append([torch.as_tensor(group["lr"]).detach().clone() for group in optimizer.param_groups])

    def lrs(self, group):
        return [float(step[group]) for step in self.copies]


@pytest.mark.parametrize("strategy", ["auto", "wse"])
def test_values_logged_at_step_i_are_the_closed_forms_the_optimizer_used_at_step_i(strategy):
    used = RecordUsedValues()
    trainer, log = fit(tagged_lr_and_wd, [LearningRateMonitor(log_momentum=True), used], steps=STEPS, strategy=strategy)
    assert log.names() == {
        "lr-AdamW/decay", "lr-AdamW/decay-momentum", "lr-AdamW/decay-weight_decay",
        "lr-AdamW/no_decay", "lr-AdamW/no_decay-momentum", "lr-AdamW/no_decay-weight_decay",
    }
    steps = range(STEPS)
    # In-graph values are float32 under strategy="wse"; host values are float64.
    tolerance = dict(rel=1e-6) if strategy == "wse" else dict(rel=1e-12)
    assert log.series("lr-AdamW/decay") == pytest.approx({i: lr_at(i) for i in steps}, **tolerance)
    assert log.series("lr-AdamW/no_decay") == pytest.approx({i: lr_at(i) for i in steps}, **tolerance)
    assert log.series("lr-AdamW/decay-weight_decay") == pytest.approx({i: wd_at(i) for i in steps}, abs=1e-8, **tolerance)
    assert log.series("lr-AdamW/no_decay-weight_decay") == {i: 0.0 for i in steps}
    assert log.series("lr-AdamW/decay-momentum") == pytest.approx({i: 0.9 for i in steps})
    assert list(log.series("lr-AdamW/decay").values()) == pytest.approx(used.lrs(0), rel=1e-7)
    # Every logged call is one step's values, once.
    assert [step for step, _ in log.calls] == list(steps)
    assert float(trainer.callback_metrics["lr-AdamW/decay"]) == pytest.approx(lr_at(STEPS - 1), rel=1e-6)


def test_strict_device_reports_no_violation_with_the_monitor():
    trainer, log = fit(
        tagged_lr_and_wd, [LearningRateMonitor(log_momentum=True)], steps=6,
        strategy=wse.WSEStrategy(check="strict", verify_steps=4),
    )
    report = trainer.strategy.device.report()
    assert report.violations == {} and report.steps_verified == 4
    assert len(log.calls) == 6


def test_strict_device_catches_a_read_inside_the_step():
    """The check above can fail: reading the in-graph LR on the host inside the step is a violation."""

    class ReadsInsideTheStep(L.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            float(optimizer.param_groups[0]["lr"])

    with pytest.raises(HostSyncError):
        fit(tagged_lr_and_wd, [ReadsInsideTheStep()], steps=3, strategy="wse")


def test_no_scheduler_and_manual_optimization_under_wse():
    def configure(module):
        return wse.optim.SGD(module.parameters(), lr=0.05, momentum=0.9, weight_decay=0.01)

    trainer, log = fit(configure, [LearningRateMonitor(log_momentum=True)], manual=True, steps=3, strategy="wse")
    assert log.series("lr-SGD") == pytest.approx({0: 0.05, 1: 0.05, 2: 0.05})
    assert log.series("lr-SGD-momentum") == pytest.approx({0: 0.9, 1: 0.9, 2: 0.9})
    assert trainer.strategy.device.report().violations == {}


def test_gradient_accumulation_logs_each_optimizer_step_once():
    _, log = fit(tagged_lr_and_wd, [LearningRateMonitor()], steps=3, accumulate_grad_batches=2)
    assert [step for step, _ in log.calls] == [0, 1, 2]
    assert log.series("lr-AdamW/decay") == pytest.approx({i: lr_at(i) for i in range(3)})


def test_log_every_n_steps_is_followed():
    _, log = fit(tagged_lr_and_wd, [LearningRateMonitor()], steps=8, log_every_n_steps=4)
    assert [step for step, _ in log.calls] == [3, 7]  # as Lightning's monitor: steps n-1, 2n-1, ...
    assert log.series("lr-AdamW/decay") == pytest.approx({3: lr_at(3), 7: lr_at(7)})


def test_epoch_interval_logs_at_each_epoch_start():
    def configure(module):
        optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
        return [optimizer], [torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)]  # interval "epoch"

    _, log = fit(configure, [LearningRateMonitor()], steps=6, max_epochs=3, limit_train_batches=2)
    assert log.series("lr-SGD") == pytest.approx({0: 0.1, 2: 0.05, 4: 0.025})


def test_an_optimizer_with_step_and_epoch_schedulers_is_logged_once_per_step():
    def configure(module):
        optimizer = torch.optim.SGD(module.parameters(), lr=0.1, weight_decay=0.1)
        wd = CosineDecayWD(optimizer, initial_val=0.1, end_val=0.0, total_iters=6)
        return [optimizer], [{"scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5), "interval": "epoch"},
                             {"scheduler": wd, "interval": "step"}]

    _, log = fit(configure, [LearningRateMonitor()], steps=6, max_epochs=3, limit_train_batches=2)
    assert [step for step, _ in log.calls] == list(range(6))
    assert log.series("lr-SGD") == pytest.approx({0: 0.1, 1: 0.1, 2: 0.05, 3: 0.05, 4: 0.025, 5: 0.025})
    assert log.series("lr-SGD-weight_decay") == pytest.approx({i: wd_at(i) for i in range(6)})


def test_log_plan_writes_a_csv_beside_the_metrics(tmp_path):
    logger = CSVLogger(str(tmp_path), name="run")
    trainer = L.Trainer(**dict(QUIET, max_steps=4, logger=logger, callbacks=[LearningRateMonitor(log_plan=True)]))
    trainer.fit(Module(tagged_lr_and_wd), data(batches=4))
    with open(tmp_path / "run" / "version_0" / "lr_plan.csv") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["step"]) for row in rows] == [0, 1, 2, 3]
    assert [float(row["lr-AdamW/decay"]) for row in rows] == pytest.approx([lr_at(i) for i in range(4)], rel=1e-12)
    assert [float(row["lr-AdamW/decay-weight_decay"]) for row in rows] == pytest.approx([wd_at(i) for i in range(4)])
    with open(tmp_path / "run" / "version_0" / "metrics.csv") as file:
        logged = [float(row["lr-AdamW/decay"]) for row in csv.DictReader(file) if row.get("lr-AdamW/decay")]
    assert logged == pytest.approx([float(row["lr-AdamW/decay"]) for row in rows], rel=1e-12)


class FigureLogger(RecordingLogger):
    """Stands for TensorBoardLogger: its experiment (a SummaryWriter) has ``add_figure``."""

    def __init__(self):
        super().__init__()
        self.figures = []

    @property
    def experiment(self):
        return self

    def add_figure(self, tag, figure, global_step=None):
        self.figures.append((tag, figure, global_step))


def test_log_plan_sends_a_figure_to_a_logger_that_shows_figures():
    pytest.importorskip("matplotlib")
    logger = FigureLogger()
    trainer = L.Trainer(**dict(QUIET, max_steps=3, logger=logger, callbacks=[LearningRateMonitor(log_plan=True)]))
    trainer.fit(Module(tagged_lr_and_wd), data(batches=3))
    ((tag, figure, step),) = logger.figures
    assert (tag, step) == ("lr_plan", 0)
    lr_axes, wd_axes = figure.axes
    decay = next(line for line in lr_axes.get_lines() if line.get_label() == "lr-AdamW/decay")
    assert list(decay.get_ydata()) == pytest.approx([lr_at(i) for i in range(3)])
    assert [line.get_label() for line in wd_axes.get_lines()] == ["lr-AdamW/decay-weight_decay"]


def test_log_plan_leaves_out_what_it_cannot_plan_and_says_so(tmp_path):
    def configure(module):
        optimizer = torch.optim.SGD(module.parameters(), lr=0.1, weight_decay=0.1)
        epochs = torch.optim.lr_scheduler.StepLR(optimizer, 1)  # interval "epoch"
        wd = CosineDecayWD(optimizer, initial_val=0.1, end_val=0.0, total_iters=6)
        return [optimizer], [epochs, {"scheduler": wd, "interval": "step"}]

    logger = CSVLogger(str(tmp_path), name="run")
    trainer = L.Trainer(**dict(QUIET, max_steps=3, logger=logger, callbacks=[LearningRateMonitor(log_plan=True)]))
    with pytest.warns(UserWarning, match=r"StepLR step\(s\) other than once per optimizer step"):
        trainer.fit(Module(configure), data(batches=3))
    with open(tmp_path / "run" / "version_0" / "lr_plan.csv") as file:
        assert next(csv.reader(file)) == ["step", "lr-SGD-weight_decay"]


def test_unknown_logging_interval_is_an_error_at_construction():
    with pytest.raises(MisconfigurationException, match="'step', 'epoch' or None, got 'batch'"):
        LearningRateMonitor(logging_interval="batch")


def test_no_logger_is_an_error_at_fit_start():
    trainer = L.Trainer(**dict(QUIET, max_steps=1, logger=False, callbacks=[LearningRateMonitor()]))
    with pytest.raises(MisconfigurationException, match="no logger: pass `logger=CSVLogger"):
        trainer.fit(Module(tagged_lr_and_wd), data(batches=1))


def test_duplicate_group_names_are_an_error_at_fit_start():
    def configure(module):
        groups = [{"params": module.first.parameters(), "name": "x"}, {"params": module.second.parameters(), "name": "x"}]
        return torch.optim.SGD(groups, lr=0.1)

    with pytest.raises(MisconfigurationException, match=r"duplicated param group names \['x'\]"):
        fit(configure, [LearningRateMonitor()], steps=1)


def test_a_plan_of_unknown_length_is_an_error_at_fit_start():
    trainer = L.Trainer(**dict(QUIET, max_epochs=-1, logger=RecordingLogger(), callbacks=[LearningRateMonitor(log_plan=True)]))
    loader = data(batches=2)
    infinite = torch.utils.data.DataLoader(_Endless(loader.dataset), batch_size=4)
    with pytest.raises(MisconfigurationException, match="length of the run"):
        trainer.fit(Module(tagged_lr_and_wd), infinite)


class _Endless(torch.utils.data.IterableDataset):
    def __init__(self, dataset):
        self.dataset = dataset

    def __iter__(self):
        while True:
            yield from self.dataset



@pytest.mark.slow
def test_two_processes_log_once_and_agree(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "WORLD_SIZE", "NODE_RANK")}
    result = subprocess.run(
        [sys.executable, "-m", "tests.callbacks.lr_monitor_ddp", str(tmp_path)],
        cwd=REPOSITORY, env=environment, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    zero, one = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert [step for step, _ in zero["calls"]] == [0, 1, 2, 3]
    assert one["calls"] == []  # rank one computes, rank zero logs
    assert {step: metrics["lr-AdamW/decay"] for step, metrics in zero["calls"]} == pytest.approx(
        {i: lr_at(i) for i in range(4)}, rel=1e-6
    )
    assert zero["callback_metrics"] == one["callback_metrics"]
    assert zero["callback_metrics"]["lr-AdamW/decay-weight_decay"] == pytest.approx(wd_at(3), rel=1e-6)
    assert zero["violations"] == one["violations"] == {}
