"""Loading the stored golden values and comparing trajectories against them."""
import gzip
import json
import math
from pathlib import Path

import torch

GOLDEN = Path(__file__).parent / "golden"
# The published values were stored to 12 significant digits; values at or near zero
# are compared absolutely.
REL, ABS = 1e-6, 1e-15


def load_cases(name: str) -> list:
    with gzip.open(GOLDEN / f"{name}.json.gz", "rt") as f:
        return json.load(f)["cases"]


def optimizer(group_lrs, extras=None):
    groups = []
    for index, lr in enumerate(group_lrs):
        group = {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr}
        group.update((extras or [{}] * len(group_lrs))[index])
        groups.append(group)
    return torch.optim.SGD(groups, lr=0.1, weight_decay=0.0)


def assert_matches(case: dict, trajectory: list) -> None:
    """Every stored value equals the trajectory's at the same index, to REL relative."""
    assert len(trajectory) == case["steps"] + 1
    for index, expected in zip(case["indices"], case["values"]):
        actual = trajectory[index]
        for position, (a, e) in enumerate(zip(actual, expected)):
            if not math.isclose(a, e, rel_tol=REL, abs_tol=ABS):
                raise AssertionError(
                    f"{case['name']}: value {position} at index {index} is {a!r}, the published "
                    f"implementation wrote {e!r}"
                )
