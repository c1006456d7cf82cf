"""A schedule gives the same number on both arithmetics."""
import math

import torch

from wse.schedules import CosineDecay


def test_cosine_decay_closed_form_on_both_paths():
    schedule = CosineDecay(1.0, 0.0, total_steps=10)
    expected = 0.5 * (1 + math.cos(math.pi * 0.3))
    assert schedule(3) == expected
    assert abs(schedule(torch.tensor(3, dtype=torch.float64)).item() - expected) < 1e-15
