"""Configs build schedulers that write the values cerebras-pytorch 2.10.0 writes for the same schedule.

The golden values come from the published schedulers, built by hand to the schedule each
config describes (SequentialLR with the cumulative milestones, ChainedLR, ScalePerParamLR
over groups with ``adjust_learning_rate``, ...). The published implementation computes
in float32: agreement is to a relative 1e-6 with an absolute floor of 1e-7 times the
peak.
"""
import json
from pathlib import Path

import pytest
import torch

from wse.optim import configure_lr_scheduler, configure_scheduler

GOLDEN = json.loads((Path(__file__).parent / "golden" / "configure_scheduler.json").read_text())
CASES = {case["name"]: case for case in GOLDEN["cases"]}


def make_optimizer(case):
    names = case["groups"] or [None]
    groups = []
    for group_names in names:
        parameters = [torch.nn.Parameter(torch.zeros(1)) for _ in group_names or [0]]
        group = {"params": parameters}
        if group_names:
            group["param_names"] = group_names
        groups.append(group)
    return torch.optim.SGD(groups, lr=0.123, weight_decay=0.0456)


def run(case):
    optimizer = make_optimizer(case)
    if case["function"] == "configure_scheduler":
        scheduler = configure_scheduler(optimizer, case["config"])
    else:
        scheduler = configure_lr_scheduler(optimizer, case["config"], case["adjust_learning_rate"])
    rows = []
    for _ in range(case["steps"]):
        rows.append([float(group[case["key"]]) for group in optimizer.param_groups])
        scheduler.step()
    return torch.tensor(rows, dtype=torch.float64)


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_matches_published_schedulers(name):
    case = CASES[name]
    expected = torch.tensor(case["values"], dtype=torch.float64)
    actual = run(case)
    assert actual.shape == expected.shape
    floor = 1e-7 * expected.abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=floor)
