"""Every Cerebras LR/WD scheduler writes the values cerebras-pytorch 2.10.0 writes, step by step.

The golden values were produced by running the published implementation on each case
of ``scheduler_cases.py`` for 2100 steps. The published implementation computes in
float32, so agreement is to a relative 1e-6 with an absolute floor of 1e-7 times the
schedule's peak: float32's resolution, below which the reference itself is noise
(e.g. a cosine at its end point).
"""
import gzip
import json
from pathlib import Path

import pytest
import torch

from wse.optim import lr_scheduler, weight_decay_scheduler

from .scheduler_cases import CASES, STEPS

GOLDEN = json.loads(gzip.open(Path(__file__).parent / "golden" / "cerebras_schedulers.json.gz", "rt").read())


def build(spec, family, optimizer):
    module = lr_scheduler if family == "lr" else weight_decay_scheduler
    cls = getattr(module, spec["cls"])
    kwargs = dict(spec.get("kwargs", {}))
    if "schedulers" in spec:
        children = [build(child, family, optimizer) for child in spec["schedulers"]]
        if spec["cls"].startswith("Chained"):
            return cls(children, **kwargs)
        return cls(optimizer, children, **kwargs)
    return cls(optimizer, **kwargs)


def make_optimizer(groups):
    params = []
    for tags in groups:
        group = {"params": [torch.nn.Parameter(torch.zeros(1))]}
        if tags is not None:
            group["tags"] = tags
        params.append(group)
    return torch.optim.SGD(params, lr=0.123, weight_decay=0.0456)


def run(spec, tensor_values=False):
    optimizer = make_optimizer(spec.get("groups", [None]))
    scheduler = build(spec, spec["family"], optimizer)
    if tensor_values:
        scheduler.enable_tensor_values(dtype=torch.float64)
    key = "lr" if spec["family"] == "lr" else "weight_decay"
    rows = []
    for _ in range(STEPS):
        rows.append([float(group[key]) for group in optimizer.param_groups])
        scheduler.step()
    return torch.tensor(rows, dtype=torch.float64)


def assert_matches_reference(actual, name):
    expected = torch.tensor(GOLDEN["values"][name], dtype=torch.float64)
    floor = 1e-7 * expected.abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=floor, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_host_values_match_reference(name):
    assert GOLDEN["steps"] == STEPS
    assert_matches_reference(run(CASES[name]), name)


@pytest.mark.parametrize("name", ["cosine_decay", "sequential_three", "one_cycle_linear_three", "cyclic_exp_range", "wd_chained", "tagged"])
def test_tensor_values_match_reference(name):
    assert_matches_reference(run(CASES[name], tensor_values=True), name)
