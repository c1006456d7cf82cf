"""Megatron-Core's OptimizerParamScheduler API: settings, per-group values, state and errors."""
import logging
import math

import pytest
import torch

from wse import schedules as S
from wse.compat.megatron import OptimizerParamScheduler

from .golden_cases import optimizer

SETTINGS = dict(
    init_lr=0.0, max_lr=1e-3, min_lr=1e-5, lr_warmup_steps=10, lr_decay_steps=100, lr_decay_style="cosine",
    start_wd=0.01, end_wd=0.1, wd_incr_steps=100, wd_incr_style="linear",
)


def groups(opt):
    return [(group["lr"], group["weight_decay"]) for group in opt.param_groups]


def make(extras=None, **overrides):
    extras = extras or [{}]
    opt = optimizer([1.0] * len(extras), extras)
    return opt, OptimizerParamScheduler(opt, **dict(SETTINGS, **overrides))


def test_construction_writes_step_zero_and_step_advances_by_increment():
    opt, scheduler = make()
    assert scheduler.num_steps == 0 and groups(opt) == [(0.0, 0.01)]
    scheduler.step(5)
    assert groups(opt) == [(pytest.approx(5e-4), pytest.approx(0.01 + 0.05 * 0.09))]
    scheduler.step(5)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3)  # the warmup includes its last step
    scheduler.step(200)
    assert groups(opt) == [(1e-5, 0.1)]
    assert scheduler.get_lr(opt.param_groups[0]) == 1e-5 and scheduler.get_wd() == 0.1


def test_group_settings_replace_the_schedulers_and_are_read_every_step():
    extras = [{}, {"max_lr": 2e-3, "min_lr": 0.0, "wd_mult": 0.0}, {"start_wd": 0.0, "end_wd": 0.5, "wd_mult": 2.0}]
    opt, scheduler = make(extras)
    scheduler.step(10)
    assert [lr for lr, _ in groups(opt)] == pytest.approx([1e-3, 2e-3, 1e-3])
    assert [wd for _, wd in groups(opt)] == pytest.approx([0.019, 0.0, 2 * 0.05])
    assert scheduler.get_wd(opt.param_groups[2]) == pytest.approx(0.05)  # before wd_mult
    opt.param_groups[0]["max_lr"] = 5e-3  # takes effect at the next step, as in Megatron-Core
    scheduler.step(0)
    assert opt.param_groups[0]["lr"] == pytest.approx(5e-3)
    assert isinstance(scheduler.lr_schedule(opt.param_groups[1]), S.WarmupAnneal)
    assert isinstance(scheduler.wd_schedule(opt.param_groups[2]), S.Ramp)


def test_schedules_give_the_same_values_on_a_tensor_step():
    extras = [{}, {"max_lr": 2e-3, "min_lr": 1e-4, "wd_mult": 0.5}]
    for style in ("linear", "cosine", "inverse-square-root", "constant", "WSD"):
        opt, scheduler = make(extras, lr_decay_style=style, wsd_decay_steps=30, lr_wsd_decay_style="exponential",
                              wd_incr_style="cosine")
        for group in opt.param_groups:
            for n in (0, 3, 10, 11, 50, 71, 99, 100, 101, 400):
                for schedule in (scheduler.lr_schedule(group), scheduler.wd_schedule(group)):
                    tensor = schedule(torch.tensor(n, dtype=torch.float64))
                    assert tensor.item() == pytest.approx(schedule(n), rel=1e-12, abs=1e-18)


def test_zero_weight_decay_increment_steps_give_the_end_value():
    opt, scheduler = make(wd_incr_steps=0)
    assert opt.param_groups[0]["weight_decay"] == 0.1


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(lr_decay_style="cosin"), "Did you mean 'cosine'"),
        (dict(lr_decay_style="wsd", wsd_decay_steps=10, lr_wsd_decay_style="linear"), "Did you mean 'WSD'"),
        (dict(lr_decay_style="WSD"), "needs `wsd_decay_steps`"),
        (dict(lr_decay_style="WSD", wsd_decay_steps=10), "lr_wsd_decay_style"),
        (dict(lr_decay_style="WSD", wsd_decay_steps=10, lr_wsd_decay_style="minus-sqrt"), "Did you mean 'minus_sqrt'"),
        (dict(lr_decay_style="WSD", wsd_decay_steps=200, lr_wsd_decay_style="linear"), "wsd_decay_steps"),
        (dict(wd_incr_style="cosinus"), "Did you mean 'cosine'"),
        (dict(min_lr=2e-3), "max_lr"),
        (dict(min_lr=-1.0), "min_lr"),
        (dict(init_lr=2e-3), "init_lr"),
        (dict(lr_warmup_steps=100), "smaller than `lr_decay_steps`"),
        (dict(lr_decay_steps=0), "lr_decay_steps"),
        (dict(lr_warmup_steps=-1), "lr_warmup_steps"),
        (dict(lr_warmup_steps=2.5), "whole number"),
        (dict(start_wd=0.2), "end_wd"),
        (dict(wd_incr_style="constant"), "start_wd` == `end_wd"),
        (dict(override_opt_param_scheduler=True), "both set"),
        (dict(max_lr=float("nan")), "finite"),
    ],
)
def test_bad_arguments_raise_at_construction(overrides, message):
    opt = optimizer([0.5], [{}])
    with pytest.raises((ValueError, TypeError), match=message):
        OptimizerParamScheduler(opt, **dict(SETTINGS, **overrides))
    assert opt.param_groups[0]["lr"] == 0.5


@pytest.mark.parametrize(
    "extra, message",
    [({"max_lr": 1e-6}, "min_lr <= max_lr"), ({"start_wd": 0.3}, "start_wd <= end_wd")],
)
def test_bad_group_settings_raise_before_any_group_is_written(extra, message):
    opt = optimizer([0.5, 0.5], [{}, extra])
    with pytest.raises(ValueError, match=message):
        OptimizerParamScheduler(opt, **SETTINGS)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.5]
    opt = optimizer([0.5], [{"start_wd": 0.1, "end_wd": 0.2}])
    with pytest.raises(ValueError, match="constant"):
        OptimizerParamScheduler(opt, **dict(SETTINGS, wd_incr_style="constant", start_wd=0.1, end_wd=0.1))


def test_step_increment_must_be_a_whole_number():
    _, scheduler = make()
    with pytest.raises(TypeError, match="increment"):
        scheduler.step(0.5)
    with pytest.raises(ValueError, match="below 0"):
        scheduler.step(-1)


def test_state_round_trip_sets_the_step_count():
    opt, scheduler = make()
    scheduler.step(40)
    state = scheduler.state_dict()
    assert state == {
        "max_lr": 1e-3, "lr_warmup_steps": 10, "num_steps": 40, "lr_decay_style": "cosine", "lr_decay_steps": 100,
        "min_lr": 1e-5, "start_wd": 0.01, "end_wd": 0.1, "wd_incr_style": "linear", "wd_incr_steps": 100,
    }
    expected = groups(opt)
    other_opt, other = make()
    other.step(25)  # an already stepped scheduler is set to the saved count, not advanced by it
    other.load_state_dict(state)
    assert other.num_steps == 40 and groups(other_opt) == expected


def test_loading_uses_the_checkpoints_weight_decay_settings_at_once():
    saved_opt, saved = make(start_wd=0.0, end_wd=0.5, wd_incr_style="cosine")
    saved.step(30)
    opt, scheduler = make()
    scheduler.load_state_dict(saved.state_dict())
    assert scheduler.end_wd == 0.5 and groups(opt) == groups(saved_opt)


def test_use_checkpoint_false_requires_matching_settings():
    _, saved = make(max_lr=2e-3)
    _, strict = make(use_checkpoint_opt_param_scheduler=False)
    with pytest.raises(ValueError, match=r"learning rate \(max_lr=0.002\) differs"):
        strict.load_state_dict(saved.state_dict())
    assert strict.max_lr == 1e-3 and strict.num_steps == 0  # nothing was half-loaded
    _, matching = make()
    matching.step(7)
    strict.load_state_dict(matching.state_dict())
    assert strict.num_steps == 7


def test_override_keeps_the_constructor_settings(caplog):
    _, saved = make(max_lr=2e-3, lr_decay_style="linear")
    saved.step(50)
    opt, scheduler = make(override_opt_param_scheduler=True, use_checkpoint_opt_param_scheduler=False)
    with caplog.at_level(logging.INFO, logger="wse.compat.megatron"):
        scheduler.load_state_dict(saved.state_dict())
    assert scheduler.max_lr == 1e-3 and scheduler.lr_decay_style == "cosine" and scheduler.num_steps == 50
    assert "overriding learning rate value to 0.001" in caplog.text
    progress = 40 / 90
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi * progress)))


def test_loading_old_key_names_and_missing_keys():
    _, scheduler = make()
    scheduler.load_state_dict({
        "start_lr": 2e-3, "min_lr": 0.0, "warmup_iter": 5, "end_iter": 50, "decay_style": "linear", "num_iters": 30,
    })
    assert (scheduler.max_lr, scheduler.lr_warmup_steps, scheduler.lr_decay_steps) == (2e-3, 5, 50)
    assert scheduler.lr_decay_style == "linear" and scheduler.num_steps == 30
    assert scheduler.start_wd == 0.01  # states without weight decay keep the constructor's
    with pytest.raises(KeyError, match="lr_decay_steps.*decay_steps.*end_iter"):
        scheduler.load_state_dict({"max_lr": 1e-3, "min_lr": 0.0, "lr_warmup_steps": 1, "lr_decay_style": "linear", "num_steps": 0})
    with pytest.raises(ValueError, match="smaller than `lr_decay_steps`"):
        scheduler.load_state_dict(dict(scheduler.state_dict(), lr_warmup_steps=500))


def test_construction_logs_the_decay_style(caplog):
    with caplog.at_level(logging.INFO, logger="wse.compat.megatron"):
        make(lr_decay_style="inverse-square-root")
    assert "learning rate decay style: inverse-square-root" in caplog.text


def test_any_object_with_param_groups_is_accepted():
    class MegatronLikeOptimizer:
        def __init__(self):
            self.param_groups = [{"params": [], "lr": 0.0, "weight_decay": 0.0, "wd_mult": 0.0}]

    opt = MegatronLikeOptimizer()
    OptimizerParamScheduler(opt, **SETTINGS).step(10)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3) and opt.param_groups[0]["weight_decay"] == 0.0
    with pytest.raises(TypeError, match="param_groups"):
        OptimizerParamScheduler(object(), **SETTINGS)
