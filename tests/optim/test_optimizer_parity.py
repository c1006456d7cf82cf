"""Trajectory parity: 100 float64 steps of every optimizer and switch against stored golden values.

The golden parameters and state come from cerebras-pytorch 2.10.0 (NAdam's from
torch.optim.NAdam, see ``optimizer_cases``); they are compared within a relative 1e-6.
"""
import json
from pathlib import Path

import pytest
import torch

import wse.optim

from . import optimizer_cases as C

GOLDEN = json.loads((Path(__file__).parent / "golden" / "optimizers.json").read_text())
RTOL = 1e-6
ATOL = 1e-9  # for entries near zero, where a relative bound means nothing


def test_golden_file_matches_the_cases():
    assert GOLDEN["steps"] == C.STEPS
    assert tuple(GOLDEN["checkpoints"]) == C.CHECKPOINTS
    assert set(GOLDEN["cases"]) == set(C.CASES)


def test_every_optimizer_has_cases():
    covered = {cls_name for cls_name, _ in C.CASES.values()}
    assert covered == {
        "Adadelta", "Adafactor", "Adagrad", "Adamax", "Adam", "AdamW", "ASGD",
        "Lamb", "Lion", "NAdam", "RAdam", "RMSprop", "Rprop", "SGD",
    }


@pytest.fixture(scope="module")
def trajectories():
    return {name: C.train(getattr(wse.optim, cls_name), kwargs) for name, (cls_name, kwargs) in C.CASES.items()}


@pytest.mark.parametrize("name", sorted(C.CASES))
def test_parameters_match_golden(name, trajectories):
    seen, _ = trajectories[name]
    golden = GOLDEN["cases"][name]["params"]
    for checkpoint in C.CHECKPOINTS:
        for index, (actual, expected) in enumerate(zip(seen[checkpoint], golden[str(checkpoint)])):
            expected = torch.tensor(expected, dtype=torch.float64).reshape(actual.shape)
            torch.testing.assert_close(
                actual, expected, rtol=RTOL, atol=ATOL, msg=lambda m: f"{name}, step {checkpoint}, param {index}: {m}"
            )


@pytest.mark.parametrize("name", sorted(C.CASES))
def test_state_matches_golden(name, trajectories):
    """Same state keys per parameter (the published layout) and the same values."""
    _, state = trajectories[name]
    golden = GOLDEN["cases"][name]["state"]
    assert set(golden) == {str(i) for i in state}
    for index, values in state.items():
        expected_state = golden[str(index)]
        assert set(values) == set(expected_state), f"{name}, param {index}"
        for key, actual in values.items():
            torch.testing.assert_close(
                torch.tensor(actual, dtype=torch.float64),
                torch.tensor(expected_state[key], dtype=torch.float64),
                rtol=RTOL,
                atol=ATOL,
                msg=lambda m: f"{name}, param {index}, state {key!r}: {m}",
            )


@pytest.mark.parametrize("name", sorted(C.CASES))
def test_tensor_hyperparameters_give_the_golden_trajectory(name):
    cls_name, kwargs = C.CASES[name]
    seen, _ = C.train(getattr(wse.optim, cls_name), C.tensor_hyperparameters(kwargs), checkpoints=(C.STEPS,))
    golden = GOLDEN["cases"][name]["params"][str(C.STEPS)]
    for index, (actual, expected) in enumerate(zip(seen[C.STEPS], golden)):
        expected = torch.tensor(expected, dtype=torch.float64).reshape(actual.shape)
        torch.testing.assert_close(actual, expected, rtol=RTOL, atol=ATOL, msg=lambda m: f"{name}, param {index}: {m}")
