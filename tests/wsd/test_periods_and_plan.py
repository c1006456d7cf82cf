"""The decay-period protocol on every WSD face, its checks, and the checkpoint plan."""
import pytest
import torch

import wse.schedules as S
from wse.compat.megatron import OptimizerParamScheduler
from wse.compat.pytorch_accelerated import WSDLrScheduler
from wse.optim.lr_scheduler import ConstantLR
from wse.wsd import POST_DECAY, PRE_DECAY, CheckpointPlan, DecayPeriod, check_periods, find_decay_periods

from .helpers import WarmupStableDecayLR


def optimizer():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.01)


@pytest.mark.parametrize(
    "count, total, expected",
    [
        # (start, end, decay steps, pre-decay step): geometric checkpoints, decay int(length * 0.2)
        (1, 100, [(0, 100, 20, 80)]),
        (2, 100, [(0, 50, 10, 40), (50, 100, 10, 90)]),
        (3, 200, [(0, 50, 10, 40), (50, 100, 10, 90), (100, 200, 20, 180)]),
    ],
)
def test_pytorch_accelerated_periods_match_get_decay_info(count, total, expected):
    scheduler = WSDLrScheduler(optimizer(), total_steps=total, num_checkpoints=count, decay_phase_ratio=0.2)
    periods = scheduler.decay_periods()
    assert [tuple(p) for p in periods] == expected
    assert [p._asdict() for p in periods] == scheduler.get_decay_info()
    assert [p.period_end for p in periods] == scheduler.get_checkpoint_steps()


def test_megatron_wsd_has_one_period_and_other_styles_none():
    args = dict(init_lr=0.0, max_lr=0.01, min_lr=0.0, lr_warmup_steps=5, lr_decay_steps=100, start_wd=0.0,
                end_wd=0.0, wd_incr_steps=100, wd_incr_style="constant")
    wsd = OptimizerParamScheduler(optimizer(), lr_decay_style="WSD", wsd_decay_steps=30, lr_wsd_decay_style="linear", **args)
    assert wsd.decay_periods() == [DecayPeriod(0, 100, 30, 70)]
    assert OptimizerParamScheduler(optimizer(), lr_decay_style="cosine", **args).decay_periods() == []


def test_wse_schedule_and_its_scheduler_report_periods():
    schedule = S.WarmupStableDecay(1.0, (25, 50, 100), 0.2)
    assert [tuple(p) for p in schedule.decay_periods()] == [(0, 25, 5, 20), (25, 50, 5, 45), (50, 100, 10, 90)]
    assert [tuple(p) for p in WarmupStableDecayLR(optimizer()).decay_periods()] == [(0, 20, 4, 16), (20, 40, 4, 36)]
    assert ConstantLR(optimizer(), 0.1).decay_periods() == []


def test_find_decay_periods_picks_the_one_wsd_scheduler():
    opt = optimizer()
    wsd = WSDLrScheduler(opt, total_steps=40)
    other = torch.optim.lr_scheduler.StepLR(opt, 5)
    scheduler, periods = find_decay_periods([other, wsd])
    assert scheduler is wsd and periods == [DecayPeriod(0, 40, 4, 36)]
    with pytest.raises(TypeError, match="got StepLR, ConstantLR. Supported: wse.compat.pytorch_accelerated.WSDLrScheduler"):
        find_decay_periods([other, ConstantLR(opt, 0.1)])
    with pytest.raises(TypeError, match="got no scheduler"):
        find_decay_periods([])
    with pytest.raises(ValueError, match="several schedulers report decay periods"):
        find_decay_periods([wsd, WSDLrScheduler(opt, total_steps=40)])


def test_check_periods():
    check_periods([DecayPeriod(0, 10, 2, 8), DecayPeriod(10, 20, 0, 20)], max_steps=20)
    with pytest.raises(ValueError, match=r"checkpoints at step\(s\) \[20\], beyond the run's 15 steps"):
        check_periods([DecayPeriod(0, 10, 2, 8), DecayPeriod(10, 20, 2, 18)], max_steps=15)
    check_periods([DecayPeriod(0, 10, 2, 8)], max_steps=float("inf"))  # a run of unknown length
    with pytest.raises(ValueError, match="inconsistent decay period"):
        check_periods([DecayPeriod(0, 10, 2, 7)])
    with pytest.raises(ValueError, match="inconsistent decay period"):
        check_periods([DecayPeriod(5, 10, 2, 8)])


PERIODS = [DecayPeriod(0, 10, 2, 8), DecayPeriod(10, 20, 0, 20), DecayPeriod(20, 40, 4, 36)]


def test_plan_in_the_run():
    plan = CheckpointPlan(PERIODS)
    assert [e.kind for e in plan.events_at(8)] == [PRE_DECAY] and [e.kind for e in plan.events_at(10)] == [POST_DECAY]
    assert [e.kind for e in plan.events_at(20)] == [PRE_DECAY, POST_DECAY]  # no decay: both at once
    assert plan.events_at(9) == [] and plan.branches_at(36) == []
    assert not any(plan.holds(step) for step in range(50))
    assert plan.checkpoint_steps == [10, 20, 40]


def test_plan_with_branches():
    plan = CheckpointPlan(PERIODS, branch=True)
    assert [e.kind for e in plan.events_at(8)] == [PRE_DECAY] and plan.events_at(10) == []
    assert plan.branches_at(8) == [PERIODS[0]] and plan.branches_at(20) == [] and plan.branches_at(36) == [PERIODS[2]]
    # A period without decay has nothing to branch: the run saves its end itself.
    assert [e.kind for e in plan.events_at(20)] == [PRE_DECAY, POST_DECAY]
    assert [s for s in range(45) if plan.holds(s)] == [8, 9, 10, 20, 36, 37, 38, 39, 40, 41, 42, 43, 44]
    assert "branch" in repr(plan) and "[20, 36, 40]" in repr(plan)


def test_periods_as_dicts_and_malformed_ones():
    class Dicts:
        def decay_periods(self):
            return [{"period_start": 0, "period_end": 10, "decay_steps": 2, "pre_decay_step": 8}]

    class Broken:
        def decay_periods(self):
            return [(0, 10)]

    assert find_decay_periods([Dicts()])[1] == [DecayPeriod(0, 10, 2, 8)]
    with pytest.raises(TypeError, match=r"Broken.decay_periods\(\) returned \(0, 10\); expected DecayPeriod"):
        find_decay_periods([Broken()])
