"""Adafactor's switches that cerebras-pytorch refuses, against a plain per-tensor implementation.

``_formula_step`` is Adafactor as published (Shazeer & Stern, 2018) and as Hugging Face
implements it, written out one tensor at a time in float64; the wse multi-tensor version
must follow it for ``beta1``, ``clip_threshold``, ``relative_step`` and ``warmup_init``
(the default switches are covered by the golden values of cerebras-pytorch).
"""
import math

import pytest
import torch

import wse.optim

from . import optimizer_cases as C

STEPS = 30


def _rms(t):
    return t.pow(2).mean().sqrt().item()


def _formula_step(p, g, state, lr, eps=(1e-30, 1e-3), clip_threshold=1.0, decay_rate=-0.8, beta1=None,
                  weight_decay=0.0, scale_parameter=True, relative_step=False, warmup_init=False):
    state["step"] = state.get("step", 0) + 1
    step = state["step"]
    if relative_step:
        min_step = 1e-6 * step if warmup_init else 1e-2
        step_size = min(min_step, 1.0 / math.sqrt(step))
    else:
        step_size = lr
    alpha = step_size * (max(eps[1], _rms(p)) if scale_parameter else 1.0)
    beta2t = 1.0 - step**decay_rate
    squared = g * g + eps[0]
    if p.dim() >= 2:
        row = state.get("row", torch.zeros(p.shape[:-1], dtype=p.dtype))
        col = state.get("col", torch.zeros(p.shape[:-2] + p.shape[-1:], dtype=p.dtype))
        row = beta2t * row + (1 - beta2t) * squared.mean(dim=-1)
        col = beta2t * col + (1 - beta2t) * squared.mean(dim=-2)
        state["row"], state["col"] = row, col
        variance = (row / row.mean(dim=-1, keepdim=True)).unsqueeze(-1) * col.unsqueeze(-2)
    else:
        variance = beta2t * state.get("v", torch.zeros_like(p)) + (1 - beta2t) * squared
        state["v"] = variance
    update = g / variance.sqrt()
    update = update / max(1.0, _rms(update) / clip_threshold) * alpha
    if beta1 is not None:
        update = beta1 * state.get("m", torch.zeros_like(p)) + (1 - beta1) * update
        state["m"] = update
    return p - weight_decay * alpha * p - update


def _by_formula(kwargs):
    params = [p.detach().clone() for p in C.initial_params()]
    states = [{} for _ in params]
    groups = C.param_groups(list(range(len(params))), kwargs)
    lr_of = {i: group.get("lr", kwargs.get("lr")) for group in groups for i in group["params"]}
    formula_kwargs = {k: v for k, v in kwargs.items() if k != "lr"}
    for step in range(STEPS):
        holders = [torch.nn.Parameter(p) for p in params]
        C.set_gradients(holders, step)
        params = [
            p if h.grad is None else _formula_step(p, h.grad, states[i], lr_of[i], **formula_kwargs)
            for i, (p, h) in enumerate(zip(params, holders))
        ]
    return params


CASES = {
    "beta1": {"lr": 0.01, "beta1": 0.9},
    "clip_threshold": {"lr": 0.01, "clip_threshold": 0.5},
    "beta1_clip_weight_decay": {"lr": 0.02, "beta1": 0.5, "clip_threshold": 2.0, "weight_decay": 0.1},
    "relative_step": {"lr": None, "relative_step": True},
    "relative_step_warmup_init": {"lr": None, "relative_step": True, "warmup_init": True},
    "relative_step_unscaled_beta1": {"lr": None, "relative_step": True, "scale_parameter": False, "beta1": 0.8},
    "defaults": {"lr": 0.01},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_adafactor_follows_the_published_algorithm(case):
    kwargs = CASES[case]
    expected = _by_formula(kwargs)
    params = C.initial_params()
    optimizer = wse.optim.Adafactor(C.param_groups(params, kwargs), **kwargs)
    for step in range(STEPS):
        C.set_gradients(params, step)
        optimizer.step()
    for actual, wanted in zip(params, expected):
        torch.testing.assert_close(actual.detach(), wanted, rtol=1e-10, atol=1e-12)


def test_first_moment_and_factored_state_layout():
    params = C.initial_params()
    optimizer = wse.optim.Adafactor(params, lr=0.01, beta1=0.9)
    assert set(optimizer.state[params[0]]) == {"exp_avg", "exp_avg_sq_row", "exp_avg_sq_col", "step"}
    assert optimizer.state[params[0]]["exp_avg_sq_row"].shape == (3,)
    assert optimizer.state[params[0]]["exp_avg_sq_col"].shape == (4,)
    assert optimizer.state[params[3]]["exp_avg_sq_row"].shape == (2, 2)
    assert optimizer.state[params[3]]["exp_avg_sq_col"].shape == (2, 3)
    assert set(optimizer.state[params[1]]) == {"exp_avg", "exp_avg_sq", "step"}


def test_a_learning_rate_left_unset_is_a_clear_error_at_the_step():
    p = torch.nn.Parameter(torch.ones(3, 2))
    optimizer = wse.optim.Adafactor([p], lr=None)
    p.grad = torch.ones(3, 2)
    with pytest.raises(ValueError, match="learning rate"):
        optimizer.step()
    optimizer.param_groups[0]["lr"] = 0.1  # what a learning-rate scheduler does
    optimizer.step()
    assert p.detach().max().item() < 1.0


def test_torch_adafactor_state_is_renamed_into_this_layout():
    params = [torch.nn.Parameter(torch.randn(3, 4)), torch.nn.Parameter(torch.randn(4))]
    torch_adafactor = torch.optim.Adafactor(params, lr=0.01, beta2_decay=-0.5, d=2.0)
    for _ in range(3):
        for p in params:
            p.grad = torch.randn_like(p)
        torch_adafactor.step()
    torch_state = torch_adafactor.state_dict()
    ours = wse.optim.Adafactor([torch.nn.Parameter(p.detach().clone()) for p in params], lr=0.01)
    ours.load_state_dict(torch_state)
    weight, bias = ours.param_groups[0]["params"]
    saved = torch_state["state"]
    torch.testing.assert_close(ours.state[weight]["exp_avg_sq_row"], saved[0]["row_var"].squeeze(-1))
    torch.testing.assert_close(ours.state[weight]["exp_avg_sq_col"], saved[0]["col_var"].squeeze(-2))
    torch.testing.assert_close(ours.state[bias]["exp_avg_sq"], saved[1]["variance"])
    assert ours.state[weight]["step"].item() == 3.0
    group = ours.param_groups[0]
    assert (group["decay_rate"], group["clip_threshold"], group["eps"]) == (-0.5, 2.0, (1e-30, 1e-3))
    assert "beta2_decay" not in group and "d" not in group
    for p in (weight, bias):
        p.grad = torch.ones_like(p)
    ours.step()


def test_hugging_face_adafactor_state_loads_and_continues_identically():
    """Hugging Face's layout is this one plus an ``RMS`` cache and an integer ``step``."""
    kwargs = {"lr": 0.01, "beta1": 0.9}
    straight_params = C.initial_params()
    straight = wse.optim.Adafactor(C.param_groups(straight_params, kwargs), **kwargs)
    for step in range(6):
        C.set_gradients(straight_params, step)
        straight.step()

    params = C.initial_params()
    first = wse.optim.Adafactor(C.param_groups(params, kwargs), **kwargs)
    for step in range(3):
        C.set_gradients(params, step)
        first.step()
    hf_state = first.state_dict()
    for state in hf_state["state"].values():
        state["step"] = int(state["step"].item())
        state["RMS"] = 0.5
    resumed_params = [torch.nn.Parameter(p.detach().clone()) for p in params]
    resumed = wse.optim.Adafactor(C.param_groups(resumed_params, kwargs), **kwargs)
    resumed.load_state_dict(hf_state)
    assert all("RMS" not in resumed.state[p] for p in resumed_params)
    for step in range(3, 6):
        C.set_gradients(resumed_params, step)
        resumed.step()
    for a, b in zip(resumed_params, straight_params):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=0)
