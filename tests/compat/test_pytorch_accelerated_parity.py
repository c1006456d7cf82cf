"""The values written into the param groups match pytorch-accelerated 0.1.61's, step by step."""
import pytest

from wse.compat import pytorch_accelerated as pa

from .golden_cases import assert_matches, load_cases, optimizer

CASES = load_cases("pytorch_accelerated")


def lrs(opt):
    return [group["lr"] for group in opt.param_groups]


def run(case):
    cls = getattr(pa, case["cls"])
    if case["kind"] == "run":
        opt = optimizer(case["group_lrs"])
        scheduler = cls(opt, **case["kwargs"])
    else:  # a continuation: a new scheduler loads the state of a first run
        first = cls(optimizer(case["group_lrs"]), **case["kwargs_a"])
        for _ in range(case["a_steps"]):
            first.step()
        opt = optimizer(case["group_lrs"])
        scheduler = cls(opt, **case["kwargs"])
        scheduler.load_state_dict(first.state_dict())
    trajectory = [lrs(opt)]
    for _ in range(case["steps"]):
        scheduler.step()
        trajectory.append(lrs(opt))
    return scheduler, trajectory


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_values_match_published_implementation(case):
    scheduler, trajectory = run(case)
    assert_matches(case, trajectory)
    if "checkpoint_steps" in case:
        assert scheduler.get_checkpoint_steps() == case["checkpoint_steps"]
        assert scheduler.get_decay_info() == case["decay_info"]
        assert scheduler.num_warmup_steps == case["num_warmup_steps"]


def test_cases_cover_the_parameter_space():
    names = {case["name"] for case in CASES}
    kwargs = [case["kwargs"] for case in CASES]
    assert sum(case["steps"] >= 2000 for case in CASES) == len(CASES)
    assert any(k.get("num_warmup_epochs") for k in kwargs) and any(k.get("num_cooldown_epochs") for k in kwargs)
    assert {1.0, 2.0, 0.5, 3.0, 1.5} <= {k.get("k_decay", 1.0) for k in kwargs}
    assert any(k.get("min_lr_ratio") for k in kwargs) and any(k.get("warmup_starting_lr_ratio") for k in kwargs)
    assert {1, 3} <= {k.get("num_checkpoints", 1) for k in kwargs if "total_steps" in k or "num_epochs" in k}
    assert {True, False} <= {k.get("use_inverse_sqrt_decay", True) for k in kwargs}
    assert any(case["kind"] == "continue" for case in CASES) and "wsd_full_decay_ratio" in names
