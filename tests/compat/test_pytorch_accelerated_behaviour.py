"""pytorch-accelerated's scheduler API: documented behaviour, state, placeholders and errors."""
import math
from functools import partial

import pytest
import torch

from wse import schedules as S
from wse.compat.pytorch_accelerated import (
    CosineLrScheduler,
    SchedulerBase,
    StatefulSchedulerBase,
    TrainerPlaceholderValues,
    WSDLrScheduler,
    fill_placeholders,
)

from .golden_cases import optimizer

LRS = [0.01, 0.002, 0.3]


def lrs(opt):
    return [group["lr"] for group in opt.param_groups]


def trajectory(scheduler, opt, steps):
    values = [lrs(opt)]
    for _ in range(steps):
        scheduler.step()
        values.append(lrs(opt))
    return values


# -- the documented formulas, written independently of the code under test --------------


def documented_cosine(base, n, T, W, C, k=1.0, lr_min=1e-6, min_ratio=None, start=1e-6, start_ratio=None):
    low = min_ratio * base if min_ratio is not None else lr_min
    first = start_ratio * base if start_ratio is not None else start
    if n < W:
        return first + n * (base - first) / W
    if n < T - C:
        length, s = T - W - C, n - W
        return low + 0.5 * (base - low) * (1 + math.cos(math.pi * s**k / length**k))
    return low


def documented_wsd(base, n, checkpoints, ratio, lr_min, sqrt_decay=True, warmup=0, start=1e-6):
    if n < warmup:
        return start + n / warmup * (base - start)
    period_start = 0
    for end in checkpoints:
        if n < end:
            length = end - period_start
            decay = int(length * ratio)
            into = n - period_start
            if into < length - decay:
                return base
            t = (into - (length - decay)) / decay
            if sqrt_decay:
                return base * (lr_min + (1 - lr_min) * (1 - math.sqrt(t)))
            return base / (t / lr_min + 1 - t)
        period_start = end
    return base * lr_min


def assert_close(actual, expected):
    assert actual == pytest.approx(expected, rel=1e-9, abs=1e-15)


# -- CosineLrScheduler -------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_warmup_epochs=2, num_cooldown_epochs=3),
        dict(num_warmup_epochs=5, k_decay=2.0, lr_min=1e-5),
        dict(num_warmup_epochs=2, warmup_starting_lr_ratio=0.1, min_lr_ratio=0.01, num_cooldown_epochs=1),
        dict(num_warmup_epochs=3, warmup_starting_lr_ratio=0.5),
    ],
)
def test_cosine_follows_its_documented_formula_with_warmup_and_cooldown(kwargs):
    """The cosine fills the updates between warmup and cooldown; a warmup ends at the group's lr."""
    epochs, per_epoch = 20, 50
    opt = optimizer(LRS)
    scheduler = CosineLrScheduler(opt, total_num_epochs=epochs, num_update_steps_per_epoch=per_epoch, **kwargs)
    values = trajectory(scheduler, opt, epochs * per_epoch + 20)
    T, W = epochs * per_epoch, kwargs.get("num_warmup_epochs", 0) * per_epoch
    C = kwargs.get("num_cooldown_epochs", 0) * per_epoch
    formula = dict(
        k=kwargs.get("k_decay", 1.0), lr_min=kwargs.get("lr_min", 1e-6), min_ratio=kwargs.get("min_lr_ratio"),
        start_ratio=kwargs.get("warmup_starting_lr_ratio"),
    )
    for index, row in enumerate(values):
        n = max(index - 1, 0)  # construction writes update 0's value, the i-th step update i-1's
        for base, value in zip(LRS, row):
            assert_close(value, documented_cosine(base, n, T, W, C, **formula))
    for group, base in enumerate(LRS):
        column = [row[group] for row in values[1:]]
        assert max(column) == pytest.approx(base) and column[W] == pytest.approx(base)
        low = column[-1]
        assert sum(1 for v in column[W:T] if v == low) == C  # the cooldown lasts exactly its epochs


def test_cosine_without_warmup_starts_and_ends_as_documented():
    opt = optimizer(LRS)
    scheduler = CosineLrScheduler(opt, total_num_epochs=1, num_update_steps_per_epoch=10, lr_min=1e-4)
    values = trajectory(scheduler, opt, 11)
    assert values[0] == LRS and values[1] == pytest.approx(LRS)
    assert values[-1] == [1e-4] * 3 and min(v for row in values for v in row) == 1e-4


def test_cosine_state_round_trip_resumes_the_schedule():
    kwargs = dict(total_num_epochs=10, num_update_steps_per_epoch=10, num_warmup_epochs=2, num_cooldown_epochs=2)
    opt = optimizer(LRS)
    scheduler = CosineLrScheduler(opt, **kwargs)
    for _ in range(37):
        scheduler.step()
    state = scheduler.state_dict()
    assert set(state) == {
        "total_iterations", "lr_min_ratio", "lr_min", "warmup_iterations", "warmup_lr_init", "warmup_lr_ratio",
        "k_decay", "num_cooldown_iterations", "num_updates",
    }
    scheduler.step()
    expected = lrs(opt)
    resumed_opt = optimizer(LRS)
    resumed = CosineLrScheduler(resumed_opt, total_num_epochs=3, num_update_steps_per_epoch=7)
    resumed.load_state_dict(state)
    resumed.step()
    assert lrs(resumed_opt) == expected
    with pytest.raises(KeyError, match="k_decay"):
        resumed.load_state_dict({k: v for k, v in state.items() if k != "k_decay"})


def test_cosine_create_scheduler_fn_and_placeholders():
    fn = CosineLrScheduler.create_scheduler_fn(num_warmup_epochs=1, k_decay=2.0)
    assert isinstance(fn, partial) and fn.keywords["total_num_epochs"] is TrainerPlaceholderValues.NUM_EPOCHS
    with pytest.raises(TypeError, match="placeholder.*fill_placeholders"):
        fn(optimizer(LRS))
    scheduler = fn(optimizer(LRS), total_num_epochs=4, num_update_steps_per_epoch=25)
    assert scheduler.total_iterations == 100 and scheduler.warmup_iterations == 25 and scheduler.k_decay == 2.0
    filled = fill_placeholders(fn, num_epochs=4, num_update_steps_per_epoch=25)
    assert filled(optimizer(LRS)).state_dict() == scheduler.state_dict()
    with pytest.raises(TypeError, match="num_update_steps_per_epoch"):
        fill_placeholders(fn, num_epochs=4)
    with pytest.raises(TypeError, match="unknown run values"):
        fill_placeholders(fn, epochs=4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(total_num_epochs=0, num_update_steps_per_epoch=10), "total_num_epochs"),
        (dict(total_num_epochs=10, num_update_steps_per_epoch=-1), "num_update_steps_per_epoch"),
        (dict(total_num_epochs=10, num_update_steps_per_epoch=10, num_warmup_epochs=-1), "num_warmup_epochs"),
        (dict(total_num_epochs=10, num_update_steps_per_epoch=10, num_warmup_epochs=6, num_cooldown_epochs=4), "cosine phase"),
        (dict(total_num_epochs=10, num_update_steps_per_epoch=10, lr_min=-1.0), "lr_min"),
        (dict(total_num_epochs=10, num_update_steps_per_epoch=10, lr_min=0.005), "above the learning rate 0.002 of param group 1"),
        (dict(total_num_epochs=10, num_update_steps_per_epoch=10, min_lr_ratio=1.5), "min_lr_ratio"),
        (dict(total_num_epochs=10, num_update_steps_per_epoch=10, k_decay=0.0), "k_decay"),
        (dict(total_num_epochs=2.5, num_update_steps_per_epoch=10), "whole number"),
    ],
)
def test_cosine_bad_arguments_raise_before_touching_the_optimizer(kwargs, message):
    opt = optimizer(LRS)
    with pytest.raises((ValueError, TypeError), match=message):
        CosineLrScheduler(opt, **kwargs)
    assert lrs(opt) == LRS and all("initial_lr" not in group for group in opt.param_groups)


def test_cosine_tensor_step_gives_the_same_values_as_a_number():
    scheduler = CosineLrScheduler(optimizer(LRS), total_num_epochs=10, num_update_steps_per_epoch=10,
                                  num_warmup_epochs=1, k_decay=1.5, num_cooldown_epochs=1)
    for n in (0, 5, 10, 37, 89, 95, 120):
        host = scheduler.get_updated_values(n)
        tensor = scheduler.get_updated_values(torch.tensor(n, dtype=torch.float64))
        assert [t.item() for t in tensor] == pytest.approx(host, rel=1e-12)
    assert all(isinstance(s, S.Schedule) for s in scheduler.schedules)


# -- WSDLrScheduler ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "total, count, expected",
    [
        (100_000, 1, [100_000]),
        (100_000, 2, [50_000, 100_000]),
        (200_000, 3, [50_000, 100_000, 200_000]),
        (200_000, 4, [25_000, 50_000, 100_000, 200_000]),
    ],
)
def test_wsd_checkpoints_are_spaced_as_documented(total, count, expected):
    scheduler = WSDLrScheduler(optimizer(LRS), total_steps=total, num_checkpoints=count)
    assert scheduler.get_checkpoint_steps() == expected
    info = scheduler.get_decay_info()
    assert [i["period_end"] for i in info] == expected
    assert all(i["pre_decay_step"] == i["period_end"] - i["decay_steps"] for i in info)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(total_steps=2000, num_checkpoints=2, num_warmup_steps=40),
        dict(total_steps=2400, num_checkpoints=4, decay_phase_ratio=0.2, use_inverse_sqrt_decay=False, lr_min=0.01),
        dict(total_steps=1000, num_checkpoints=2, decay_phase_ratio=1 / 3, lr_min=0.05, num_warmup_steps=300),
    ],
)
def test_wsd_follows_its_documented_formula_for_every_checkpoint_count(kwargs):
    opt = optimizer(LRS)
    scheduler = WSDLrScheduler(opt, **kwargs)
    values = trajectory(scheduler, opt, kwargs["total_steps"] + 30)
    checkpoints = scheduler.get_checkpoint_steps()
    assert len(checkpoints) == kwargs["num_checkpoints"] and checkpoints[-1] == kwargs["total_steps"]
    formula = dict(
        ratio=kwargs.get("decay_phase_ratio", 0.1), lr_min=kwargs.get("lr_min", 1e-6),
        sqrt_decay=kwargs.get("use_inverse_sqrt_decay", True), warmup=kwargs.get("num_warmup_steps", 0),
    )
    for index, row in enumerate(values):
        n = max(index - 1, 0)
        for base, value in zip(LRS, row):
            assert_close(value, documented_wsd(base, n, checkpoints, **formula))


def test_wsd_limits_where_the_published_formula_divides_by_zero():
    # lr_min=0 with the inverse-proportional formula: its limit, 0 once the decay starts.
    opt = optimizer(LRS)
    scheduler = WSDLrScheduler(opt, total_steps=100, lr_min=0.0, use_inverse_sqrt_decay=False)
    values = trajectory(scheduler, opt, 110)
    assert values[91] == LRS and all(row == [0.0] * 3 for row in values[92:])
    # No decay steps: stable until the checkpoint, the floor after it.
    opt = optimizer(LRS)
    scheduler = WSDLrScheduler(opt, total_steps=100, decay_phase_ratio=0.0, lr_min=0.5)
    values = trajectory(scheduler, opt, 110)
    assert all(row == LRS for row in values[:101]) and values[101] == [0.5 * b for b in LRS]


def test_wsd_default_warmup_is_one_percent():
    assert WSDLrScheduler(optimizer(LRS), total_steps=1000, num_warmup_steps=None).num_warmup_steps == 10


def test_wsd_resume_continues_from_the_saved_update():
    kwargs = dict(total_steps=400, num_warmup_steps=50, num_checkpoints=2)
    opt = optimizer(LRS)
    scheduler = WSDLrScheduler(opt, **kwargs)
    for _ in range(30):
        scheduler.step()
    state = scheduler.state_dict()
    expected = trajectory(scheduler, opt, 300)[1:]
    resumed_opt = optimizer(LRS)
    resumed = WSDLrScheduler(resumed_opt, **kwargs)
    resumed.load_state_dict(state)
    assert resumed.get_current_step() == 29
    assert trajectory(resumed, resumed_opt, 300)[1:] == expected
    # A state without the update count (as pytorch-accelerated saves it) keeps the current count.
    legacy = {k: v for k, v in state.items() if k != "num_updates"}
    fresh = WSDLrScheduler(optimizer(LRS), **kwargs)
    fresh.load_state_dict(legacy)
    assert fresh.get_current_step() == -1


def test_wsd_state_dict_has_pytorch_accelerateds_keys():
    state = WSDLrScheduler(optimizer(LRS), total_steps=100).state_dict()
    assert set(state) == {
        "param_group_field", "base_lr_values", "total_steps", "num_warmup_steps", "decay_phase_ratio", "lr_min",
        "warmup_starting_lr", "use_inverse_sqrt_decay", "num_checkpoints", "checkpoint_steps",
        "is_continuation_from_checkpoint", "previous_checkpoint_step", "checkpoint_decay_info", "num_updates",
    }


def test_wsd_continuation_starts_a_fresh_stable_phase_without_warmup():
    first_opt = optimizer(LRS)
    first = WSDLrScheduler(first_opt, total_steps=1000, num_warmup_steps=100, decay_phase_ratio=0.2)
    for _ in range(800):
        first.step()
    assert first.previous_checkpoint_step == 799
    state = first.state_dict()

    opt = optimizer([0.5, 0.5, 0.5])  # the saved base lrs win, as in pytorch-accelerated
    continued = WSDLrScheduler(opt, total_steps=500, num_checkpoints=2, decay_phase_ratio=0.1,
                               is_continuation_from_checkpoint=True)
    continued.load_state_dict(state)
    assert continued.is_continuation_from_checkpoint and continued.total_steps == 500
    assert continued.num_checkpoints == 1 and continued.decay_phase_ratio == 0.2  # the saved settings
    assert continued.get_checkpoint_steps() == [500] and continued.previous_checkpoint_step is None
    values = trajectory(continued, opt, 500)
    for index, row in enumerate(values[1:]):
        for base, value in zip(LRS, row):
            assert_close(value, documented_wsd(base, index, [500], 0.2, 1e-6))
    assert continued.previous_checkpoint_step == 399  # tracked in continuation mode too


def test_wsd_phase_information():
    opt = optimizer(LRS)
    scheduler = WSDLrScheduler(opt, total_steps=800, num_checkpoints=3)
    assert scheduler.get_checkpoint_steps() == [200, 400, 800]
    assert scheduler.get_phase_info(0)["period_end"] == 200
    assert scheduler.get_phase_info(200)["period_end"] == 200  # a checkpoint ends its own period
    assert scheduler.get_phase_info(201)["period_start"] == 200
    assert scheduler.get_phase_info(10_000) == scheduler.get_decay_info()[-1]
    for _ in range(250):
        scheduler.step()
    assert scheduler.get_current_step() == 249
    assert scheduler.get_current_phase_info() == {"period_start": 200, "period_end": 400, "decay_steps": 20, "pre_decay_step": 380}
    assert scheduler._get_checkpoint_info(250) == (200, 50)
    assert scheduler.previous_checkpoint_step == 179


def test_wsd_create_scheduler_fn_counts_warmup_in_epochs():
    fn = WSDLrScheduler.create_scheduler_fn(num_warmup_epochs=2, num_checkpoints=2)
    assert fn.keywords["num_warmup_steps"] == TrainerPlaceholderValues.PER_PROCESS_NUM_UPDATE_STEPS_PER_EPOCH * 2
    scheduler = fill_placeholders(fn, num_epochs=10, num_local_update_steps_per_epoch=30)(optimizer(LRS))
    assert scheduler.total_steps == 300 and scheduler.num_warmup_steps == 60
    scheduler = WSDLrScheduler.create_scheduler_fn(total_num_epochs=5, num_update_steps_per_epoch=100)(optimizer(LRS))
    assert scheduler.num_warmup_steps == 5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_epochs=2, num_update_steps_per_epoch=10, total_steps=20), "not all three"),
        (dict(), "length of the run is unknown"),
        (dict(total_steps=0), "total_steps"),
        (dict(total_steps=100, decay_phase_ratio=1.5), "decay_phase_ratio"),
        (dict(total_steps=100, lr_min=-0.1), "lr_min"),
        (dict(total_steps=100, lr_min=2.0), "lr_min"),
        (dict(total_steps=100, num_checkpoints=0), "num_checkpoints"),
        (dict(total_steps=100, num_checkpoints=3, decay_phase_ratio=0.5), "too large"),
        (dict(total_steps=3, num_checkpoints=3), "at least 4 steps"),
        (dict(total_steps=100, warmup_starting_lr=0.5), "exceeds the largest"),
        (dict(total_steps=100, num_warmup_steps=-5), "num_warmup_steps"),
        (dict(total_steps=TrainerPlaceholderValues.NUM_EPOCHS), "placeholder"),
    ],
)
def test_wsd_bad_arguments_raise_before_touching_the_optimizer(kwargs, message):
    opt = optimizer(LRS)
    with pytest.raises((ValueError, TypeError), match=message):
        WSDLrScheduler(opt, **kwargs)
    assert lrs(opt) == LRS and all("initial_lr" not in group for group in opt.param_groups)


def test_wsd_tensor_step_gives_the_same_values_as_a_number():
    scheduler = WSDLrScheduler(optimizer(LRS), total_steps=1000, num_warmup_steps=30, num_checkpoints=3,
                               use_inverse_sqrt_decay=False, lr_min=0.01)
    for n in (0, 10, 30, 240, 249, 250, 499, 975, 1000, 1200):
        host = scheduler.get_updated_values(n)
        tensor = scheduler.get_updated_values(torch.tensor(n, dtype=torch.float64))
        assert [t.item() for t in tensor] == pytest.approx(host, rel=1e-12)


# -- the base classes --------------------------------------------------------------------


class MilestoneLrScheduler(StatefulSchedulerBase):
    """The documented subclassing example: multiply by gamma at epoch milestones."""

    def __init__(self, optimizer, gamma=0.5, epoch_milestones=(2, 4, 5), num_steps_per_epoch=100):
        super().__init__(optimizer, param_group_field="lr")
        self.milestones = {num_steps_per_epoch * m for m in epoch_milestones}
        self.gamma = gamma

    def get_updated_values(self, num_updates):
        if num_updates in self.milestones:
            return [group[self.param_group_field] * self.gamma for group in self.optimizer.param_groups]


class StepWdScheduler(StatefulSchedulerBase):
    """The documented weight-decay example: multiply by gamma every n updates."""

    def __init__(self, optimizer, n=1000, gamma=1.1):
        super().__init__(optimizer, param_group_field="weight_decay")
        self.n, self.gamma = n, gamma

    def get_updated_values(self, num_updates):
        if num_updates % self.n == 0 and num_updates > 0:
            return [group[self.param_group_field] * self.gamma for group in self.optimizer.param_groups]


def test_documented_subclassing_examples_run_and_save_their_state():
    opt = optimizer(LRS)
    scheduler = MilestoneLrScheduler(opt, num_steps_per_epoch=10)
    for _ in range(51):
        scheduler.step()
    assert lrs(opt) == pytest.approx([b * 0.125 for b in LRS])
    state = scheduler.state_dict()
    assert state["_num_updates"] == 50 and "optimizer" not in state
    other = MilestoneLrScheduler(optimizer(LRS), num_steps_per_epoch=10)
    other.load_state_dict(state)
    assert other._num_updates == 50 and other.milestones == {20, 40, 50}

    wd_opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], weight_decay=0.1)
    wd = StepWdScheduler(wd_opt, n=5, gamma=2.0)
    for _ in range(11):
        wd.step()
    assert wd_opt.param_groups[0]["weight_decay"] == pytest.approx(0.4)
    assert wd_opt.param_groups[0]["initial_weight_decay"] == 0.1 and wd.base_lr_values == [0.1]


class Halving(SchedulerBase):
    def get_updated_values(self, num_updates):
        if num_updates < 0:
            return None
        if num_updates == 99:
            return [1.0, 2.0]  # one value too few
        return 0.5**num_updates


def test_stateless_base_writes_any_field_from_the_given_update_count():
    opt = torch.optim.SGD(
        [{"params": [torch.nn.Parameter(torch.zeros(1))], "momentum": m} for m in (0.9, 0.8, 0.7)], lr=0.1
    )
    scheduler = Halving(opt, param_group_field="momentum")
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.8, 0.7]
    assert [g["initial_momentum"] for g in opt.param_groups] == [0.9, 0.8, 0.7]
    scheduler.step_update(3)
    assert [g["momentum"] for g in opt.param_groups] == [0.125] * 3  # one value for every group
    scheduler.step_update(-1)
    assert [g["momentum"] for g in opt.param_groups] == [0.125] * 3  # None leaves them alone
    with pytest.raises(ValueError, match="2 values for 3 param groups"):
        scheduler.step_update(99)
    assert set(scheduler.state_dict()) == {"param_group_field", "_initial_param_group_field", "base_lr_values"}
    with pytest.raises(KeyError, match="dampening_x"):
        Halving(opt, param_group_field="dampening_x")
    with pytest.raises(TypeError, match="param_groups"):
        Halving(object())


def test_existing_initial_values_are_kept():
    opt = optimizer(LRS)
    for group in opt.param_groups:
        group["initial_lr"] = 1.0
    scheduler = CosineLrScheduler(opt, total_num_epochs=1, num_update_steps_per_epoch=10)
    assert scheduler.base_lr_values == [1.0, 1.0, 1.0] and lrs(opt) == [1.0, 1.0, 1.0]
