"""Saving and loading: round trips, Adam <-> AdamW, and the state of torch.optim / Hugging Face optimizers."""
import copy
import io

import pytest
import torch

import wse.optim

from . import optimizer_cases as C


def _train(optimizer, params, steps, start=0):
    for step in range(start, start + steps):
        C.set_gradients(params, step)
        optimizer.step()


def _make(cls, kwargs):
    params = C.initial_params()
    return cls(C.param_groups(params, kwargs), **kwargs), params


def _saved(optimizer):
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _assert_params_equal(a, b, rtol=0.0, atol=0.0):
    for x, y in zip(a, b):
        torch.testing.assert_close(x.detach(), y.detach(), rtol=rtol, atol=atol)


# -- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted({cls for cls, _ in C.CASES.values()}))
def test_a_saved_state_loaded_into_a_fresh_optimizer_continues_identically(name):
    kwargs = next(kw for cls, kw in C.CASES.values() if cls == name)
    cls = getattr(wse.optim, name)
    straight, straight_params = _make(cls, kwargs)
    _train(straight, straight_params, 12)

    first, params = _make(cls, kwargs)
    _train(first, params, 5)
    state = _saved(first)
    resumed, resumed_params = _make(cls, kwargs)
    with torch.no_grad():
        for p, q in zip(resumed_params, params):
            p.copy_(q)
    resumed.load_state_dict(state)
    _train(resumed, resumed_params, 7, start=5)
    _assert_params_equal(resumed_params, straight_params)


def test_loading_copies_into_the_allocated_state_and_leaves_the_saved_dict_alone():
    source, params = _make(wse.optim.Adam, {"lr": 0.01})
    _train(source, params, 3)
    saved = source.state_dict()
    frozen = copy.deepcopy(saved)
    target, target_params = _make(wse.optim.Adam, {"lr": 0.01})
    allocated = {(i, k): v for i, p in enumerate(target_params) for k, v in target.state[p].items()}
    target.load_state_dict(saved)
    for (i, key), tensor in allocated.items():
        assert target.state[target_params[i]][key] is tensor
        torch.testing.assert_close(tensor, source.state[params[i]][key], rtol=0, atol=0)
    assert saved.keys() == frozen.keys() and saved["param_groups"] == frozen["param_groups"]
    for i, state in frozen["state"].items():
        assert state.keys() == saved["state"][i].keys()


def test_param_group_tags_survive_a_round_trip_as_sets():
    p = torch.nn.Parameter(torch.ones(2))
    optimizer = wse.optim.SGD([{"params": [p], "tags": ["decay"]}], lr=0.1)
    state = optimizer.state_dict()
    state["param_groups"][0]["tags"] = ["decay", "dense"]
    optimizer.load_state_dict(state)
    assert optimizer.param_groups[0]["tags"] == {"decay", "dense"}


@pytest.mark.parametrize("source, target", [("Adam", "AdamW"), ("AdamW", "Adam")])
def test_adam_and_adamw_load_each_others_state_and_continue_identically(source, target):
    kwargs = {"lr": 0.01, "betas": (0.8, 0.99)}
    straight, straight_params = _make(getattr(wse.optim, source), kwargs)
    _train(straight, straight_params, 10)

    first, params = _make(getattr(wse.optim, source), kwargs)
    _train(first, params, 4)
    other, other_params = _make(getattr(wse.optim, target), kwargs)
    with torch.no_grad():
        for p, q in zip(other_params, params):
            p.copy_(q)
    other.load_state_dict(first.state_dict())
    _train(other, other_params, 6, start=4)
    _assert_params_equal(other_params, straight_params)


def test_a_state_for_another_model_is_refused():
    small = wse.optim.Adam([torch.nn.Parameter(torch.ones(3))])
    large = wse.optim.Adam([torch.nn.Parameter(torch.ones(4))])
    with pytest.raises(ValueError, match="shape"):
        large.load_state_dict(small.state_dict())


def test_something_that_is_not_a_state_dict_is_refused():
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        wse.optim.Adam([torch.nn.Parameter(torch.ones(3))]).load_state_dict({"exp_avg": 1})


def test_parameters_missing_from_the_saved_state_start_from_the_initial_state():
    source, params = _make(wse.optim.Adam, {"lr": 0.01})
    _train(source, params, 3)
    saved = source.state_dict()
    del saved["state"][1]
    target, target_params = _make(wse.optim.Adam, {"lr": 0.01})
    _train(target, target_params, 2)
    target.load_state_dict(saved)
    fresh = target.state[target_params[1]]
    assert torch.equal(fresh["exp_avg"], torch.zeros_like(fresh["exp_avg"]))
    assert fresh["beta1_power"].item() == pytest.approx(0.9)


# -- torch.optim and Hugging Face state -------------------------------------------------
#
# Train k steps with torch.optim, load its state into wse.optim, continue; the expected
# values are torch.optim's own continued run, with settings under which the two
# algorithms agree (Adam with eps=0, where eps is placed differently; SGD without
# dampening, whose first step differs).

TORCH_AGREES = {
    "SGD": {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1},
    "SGD_nesterov": {"lr": 0.05, "momentum": 0.9, "nesterov": True},
    "Adam": {"lr": 0.01, "eps": 0.0, "weight_decay": 0.1},
    "Adam_amsgrad": {"lr": 0.01, "eps": 0.0, "amsgrad": True},
    "AdamW": {"lr": 0.01, "eps": 0.0, "weight_decay": 0.1},
    "Adamax": {"lr": 0.01, "weight_decay": 0.1},
    "Adagrad": {"lr": 0.05, "lr_decay": 0.01, "eps": 1e-6},
    "Adadelta": {"lr": 0.5, "weight_decay": 0.1},
    "ASGD": {"lr": 0.05, "t0": 3},
    "NAdam": {"lr": 0.01, "momentum_decay": 0.01},
    "RAdam": {"lr": 0.01, "weight_decay": 0.1},
    "RMSprop": {"lr": 0.005, "momentum": 0.9, "centered": True},
    "Rprop": {"lr": 0.01, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.05)},
}


@pytest.mark.parametrize("case", sorted(TORCH_AGREES))
def test_torch_optim_state_loads_and_training_continues_as_torch_would(case):
    name = case.split("_")[0]
    kwargs = TORCH_AGREES[case]
    torch_cls = getattr(torch.optim, name)

    expected_run, expected = _make(lambda groups, **kw: torch_cls(groups, foreach=False, **kw), kwargs)
    _train(expected_run, expected, 12)

    before, params = _make(lambda groups, **kw: torch_cls(groups, foreach=False, **kw), kwargs)
    _train(before, params, 5)
    ours, our_params = _make(getattr(wse.optim, name), kwargs)
    with torch.no_grad():
        for p, q in zip(our_params, params):
            p.copy_(q)
    ours.load_state_dict(before.state_dict())
    _train(ours, our_params, 7, start=5)
    _assert_params_equal(our_params, expected, rtol=1e-6, atol=1e-9)


def test_torch_adam_step_counts_become_the_powers_of_the_coming_step():
    params = [torch.nn.Parameter(torch.ones(2, dtype=torch.float64))]
    torch_adam = torch.optim.Adam(params, betas=(0.8, 0.9))
    for _ in range(3):
        params[0].grad = torch.ones(2, dtype=torch.float64)
        torch_adam.step()
    ours = wse.optim.Adam([torch.nn.Parameter(torch.ones(2, dtype=torch.float64))])
    ours.load_state_dict(torch_adam.state_dict())
    state = ours.state[ours.param_groups[0]["params"][0]]
    assert set(state) == {"exp_avg", "exp_avg_sq", "beta1_power", "beta2_power"}
    assert state["beta1_power"].item() == pytest.approx(0.8**4)
    assert state["beta2_power"].item() == pytest.approx(0.9**4)
    assert ours.param_groups[0]["betas"] == (0.8, 0.9)


def test_a_maximizing_torch_optimizer_is_refused_where_wse_cannot_maximize():
    params = [torch.nn.Parameter(torch.ones(2))]
    state = torch.optim.Adam(params, maximize=True).state_dict()
    with pytest.raises(ValueError, match="maximize=True"):
        wse.optim.Adam([torch.nn.Parameter(torch.ones(2))]).load_state_dict(state)


def test_hugging_face_adamw_state_loads():
    """Hugging Face's AdamW: integer ``step``, ``correct_bias`` in the groups."""
    kwargs = {"lr": 0.01, "eps": 0.0, "weight_decay": 0.1}
    expected_run, expected = _make(lambda g, **kw: torch.optim.AdamW(g, foreach=False, **kw), kwargs)
    _train(expected_run, expected, 9)
    before, params = _make(lambda g, **kw: torch.optim.AdamW(g, foreach=False, **kw), kwargs)
    _train(before, params, 4)
    hf_state = before.state_dict()
    for state in hf_state["state"].values():
        state["step"] = int(state["step"].item())
    for group in hf_state["param_groups"]:
        for key in ("foreach", "maximize", "capturable", "differentiable", "fused", "amsgrad", "decoupled_weight_decay"):
            group.pop(key, None)
        group["correct_bias"] = True
    ours, our_params = _make(wse.optim.AdamW, kwargs)
    with torch.no_grad():
        for p, q in zip(our_params, params):
            p.copy_(q)
    ours.load_state_dict(hf_state)
    _train(ours, our_params, 5, start=4)
    _assert_params_equal(our_params, expected, rtol=1e-6, atol=1e-9)


def test_hugging_face_adamw_without_bias_correction_keeps_no_powers():
    p = torch.nn.Parameter(torch.ones(2))
    hf_state = {
        "state": {0: {"step": 3, "exp_avg": torch.full((2,), 0.1), "exp_avg_sq": torch.full((2,), 0.01)}},
        "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-6, "weight_decay": 0.0, "correct_bias": False, "params": [0]}],
    }
    optimizer = wse.optim.AdamW([p])
    optimizer.load_state_dict(hf_state)
    assert set(optimizer.state[p]) == {"exp_avg", "exp_avg_sq"}
    assert optimizer.param_groups[0]["correct_bias"] is False


def test_a_refused_state_leaves_the_optimizer_as_it_was():
    small = wse.optim.Adam([torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))], lr=0.5)
    large = wse.optim.Adam([torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(4))], lr=0.1)
    before = copy.deepcopy(large.state_dict())
    with pytest.raises(ValueError, match="Nothing was loaded"):
        large.load_state_dict(small.state_dict())
    after = large.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for i, state in before["state"].items():
        for key, value in state.items():
            assert torch.equal(after["state"][i][key], value)


def test_a_deep_copy_trains_on_by_itself_like_the_original():
    original, params = _make(wse.optim.NAdam, {"lr": 0.01})
    _train(original, params, 3)
    clone = copy.deepcopy(original)
    clone_params = [p for group in clone.param_groups for p in group["params"]]
    _train(original, params, 4, start=3)
    _train(clone, clone_params, 4, start=3)
    _assert_params_equal(clone_params, params)
    assert clone.enable_global_step
    assert all(clone_params[0] is not p for p in params)
