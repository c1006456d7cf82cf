"""Planned schedules: closed forms per group and key, by series name; CSV and figure output."""
import csv
import math

import pytest
import torch

from wse.compat.megatron import OptimizerParamScheduler
from wse.compat.pytorch_accelerated import CosineLrScheduler
from wse.monitoring import ParamGroupMonitor, plan_figure, write_plan_csv
from wse.monitoring.plan import plan_steps
from wse.optim.lr_scheduler import LinearLR
from wse.optim.weight_decay_scheduler import CosineDecayWD


def _two_tagged_groups(optimizer_class=torch.optim.AdamW, **kwargs):
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    return optimizer_class([{"params": [a], "tags": "decay"}, {"params": [b], "tags": "no_decay"}], **kwargs)


def test_lr_and_wd_schedulers_on_tagged_groups_follow_their_closed_forms():
    optimizer = _two_tagged_groups(lr=1.0, weight_decay=0.0)
    lr = LinearLR(optimizer, initial_learning_rate=0.1, end_learning_rate=0.01, total_iters=10)
    wd = CosineDecayWD(optimizer, initial_val=0.1, end_val=0.0, total_iters=8, param_group_tags="decay")
    plan = ParamGroupMonitor([optimizer]).plan([lr, wd], total_steps=12)
    assert plan.steps == list(range(12))
    assert list(plan.series) == ["lr-AdamW/decay", "lr-AdamW/decay-weight_decay", "lr-AdamW/no_decay"]
    for i in range(12):
        expected_lr = 0.1 + (0.01 - 0.1) * min(i, 10) / 10
        assert plan.series["lr-AdamW/decay"][i] == pytest.approx(expected_lr, rel=1e-12)
        assert plan.series["lr-AdamW/no_decay"][i] == pytest.approx(expected_lr, rel=1e-12)
        expected_wd = 0.1 * (1 + math.cos(math.pi * min(i, 8) / 8)) / 2
        assert plan.series["lr-AdamW/decay-weight_decay"][i] == pytest.approx(expected_wd, rel=1e-12, abs=1e-15)
    assert plan.unplanned == []


def test_the_plan_is_what_stepping_writes():
    optimizer = _two_tagged_groups(lr=1.0, weight_decay=0.0)
    schedulers = [
        LinearLR(optimizer, initial_learning_rate=0.1, end_learning_rate=0.01, total_iters=10),
        CosineDecayWD(optimizer, initial_val=0.1, end_val=0.0, total_iters=8, param_group_tags="decay"),
    ]
    monitor = ParamGroupMonitor([optimizer])
    plan = monitor.plan(schedulers, total_steps=12)
    for i in range(12):
        read = monitor.read()
        for name, values in plan.series.items():
            assert read[name] == pytest.approx(values[i], rel=1e-12, abs=1e-15), (name, i)
        for scheduler in schedulers:
            scheduler.step()


def test_megatron_lr_and_wd_per_group():
    optimizer = _two_tagged_groups(torch.optim.SGD, lr=1.0)
    optimizer.param_groups[1]["wd_mult"] = 0.0
    scheduler = OptimizerParamScheduler(
        optimizer, init_lr=0.0, max_lr=1e-3, min_lr=1e-4, lr_warmup_steps=5, lr_decay_steps=20,
        lr_decay_style="linear", start_wd=0.01, end_wd=0.1, wd_incr_steps=20, wd_incr_style="linear",
    )
    plan = ParamGroupMonitor([optimizer]).plan([scheduler], total_steps=25)
    for i in range(25):
        if i <= 5:
            lr = 1e-3 * i / 5
        elif i <= 20:
            lr = 1e-4 + (1 - (i - 5) / 15) * (1e-3 - 1e-4)
        else:
            lr = 1e-4
        wd = 0.01 + min(i, 20) / 20 * (0.1 - 0.01)
        assert plan.series["lr-SGD/decay"][i] == pytest.approx(lr, rel=1e-12, abs=1e-18)
        assert plan.series["lr-SGD/decay-weight_decay"][i] == pytest.approx(wd, rel=1e-12)
        assert plan.series["lr-SGD/no_decay-weight_decay"][i] == 0.0


def test_pytorch_accelerated_update_i_uses_the_value_after_i_minus_1_updates():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = CosineLrScheduler(
        optimizer, total_num_epochs=2, num_update_steps_per_epoch=5, lr_min=0.0, num_warmup_epochs=1,
        warmup_starting_lr=0.0,
    )
    plan = ParamGroupMonitor([optimizer], log_weight_decay=False).plan([scheduler], total_steps=10)
    # warmup over 5 updates from 0 to 0.1, then cosine over the remaining 5 down to 0.
    after = [0.1 * n / 5 if n < 5 else 0.1 * (1 + math.cos(math.pi * (n - 5) / 5)) / 2 for n in range(10)]
    expected = [after[0]] + after[:9]
    assert plan.series["lr-SGD"] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    for i in range(10):  # and stepping writes the same
        assert optimizer.param_groups[0]["lr"] == pytest.approx(plan.series["lr-SGD"][i], rel=1e-12, abs=1e-15)
        scheduler.step()


def test_schedulers_without_a_closed_form_are_listed_not_planned():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2)
    plan = ParamGroupMonitor([optimizer]).plan([scheduler], total_steps=5)
    assert not plan and plan.unplanned == ["StepLR"]


def test_long_runs_are_sampled_with_both_ends():
    steps = plan_steps(1_000_000, max_points=100)
    assert len(steps) == 100 and steps[0] == 0 and steps[-1] == 999_999
    with pytest.raises(ValueError, match="positive number of steps"):
        plan_steps(0)


def test_csv_and_figure(tmp_path):
    optimizer = _two_tagged_groups(lr=1.0, weight_decay=0.0)
    lr = LinearLR(optimizer, initial_learning_rate=0.1, end_learning_rate=0.01, total_iters=4)
    plan = ParamGroupMonitor([optimizer]).plan([lr], total_steps=5)
    path = write_plan_csv(plan, str(tmp_path / "logs"))
    with open(path) as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["step", "lr-AdamW/decay", "lr-AdamW/no_decay"]
    assert [int(r[0]) for r in rows[1:]] == [0, 1, 2, 3, 4]
    assert [float(r[1]) for r in rows[1:]] == pytest.approx([0.1, 0.0775, 0.055, 0.0325, 0.01])
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["lr_plan.csv"]  # no temporary left
    pytest.importorskip("matplotlib")
    figure = plan_figure(plan)
    (axes,) = figure.axes
    assert [line.get_label() for line in axes.get_lines()] == ["lr-AdamW/decay", "lr-AdamW/no_decay"]
