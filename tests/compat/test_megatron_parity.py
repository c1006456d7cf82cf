"""The lr and weight decay written by OptimizerParamScheduler match Megatron-Core's, step by step."""
import pytest

from wse.compat.megatron import OptimizerParamScheduler

from .golden_cases import assert_matches, load_cases, optimizer

CASES = load_cases("megatron")


def values(opt):
    return [v for group in opt.param_groups for v in (group["lr"], group["weight_decay"])]


def fresh_optimizer(case):
    return optimizer([1.0] * len(case["extras"]), case["extras"])


def run(case):
    opt = fresh_optimizer(case)
    scheduler = OptimizerParamScheduler(opt, **case["kwargs"])
    if case["kind"] == "load":
        # The state saved by Megatron-Core itself (possibly under older key names).
        scheduler.load_state_dict(dict(case["state"]))
    trajectory = [values(opt)]
    for _ in range(case["steps"]):
        scheduler.step(case.get("increment", 1))
        trajectory.append(values(opt))
    return trajectory


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_values_match_megatron_core(case):
    assert_matches(case, run(case))


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] == "load"], ids=lambda c: c["name"])
def test_saved_state_equals_megatron_cores(case):
    """Our scheduler, run like the first one, saves the state Megatron-Core saved."""
    first = OptimizerParamScheduler(fresh_optimizer(case), **case["kwargs_a"])
    for _ in range(case["a_steps"]):
        first.step(1)
    state = first.state_dict()
    for old, new in case["renames"].items():
        state[new] = state.pop(old)
    assert state == case["state"]


def test_cases_cover_the_parameter_space():
    kwargs = [case["kwargs"] for case in CASES]
    assert all(case["steps"] >= 2000 for case in CASES)
    assert {"linear", "cosine", "inverse-square-root", "constant", "WSD"} == {k["lr_decay_style"] for k in kwargs}
    assert {"constant", "linear", "cosine"} == {k["wd_incr_style"] for k in kwargs}
    assert {"linear", "cosine", "exponential", "minus_sqrt"} <= {k.get("lr_wsd_decay_style") for k in kwargs}
    assert {0, 100, 250} <= {k["lr_warmup_steps"] for k in kwargs}
    renamed = set().union(*(case.get("renames", {}).values() for case in CASES))
    assert {"start_lr", "warmup_iter", "end_iter", "decay_style", "num_iters", "warmup_steps", "decay_steps"} <= renamed
    assert any(k.get("override_opt_param_scheduler") for k in kwargs)
    assert any(case.get("increment", 1) > 1 for case in CASES)
