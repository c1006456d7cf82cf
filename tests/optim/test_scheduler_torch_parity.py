"""Where the Cerebras documentation says "similar to" a torch scheduler, the values agree with torch's.

Also covers the three places where wse follows the documentation rather than the
published implementation, each against the documented formula.
"""
import math

import pytest
import torch

from wse.optim import lr_scheduler as L

STEPS = 2000


def sgd(lr=0.1):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def trajectory(optimizer, scheduler, steps=STEPS):
    values = []
    for _ in range(steps):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return torch.tensor([float(v) for v in values], dtype=torch.float64)


def torch_trajectory(make, lr=0.1, steps=STEPS):
    optimizer = sgd(lr)
    return trajectory(optimizer, make(optimizer), steps)


def wse_trajectory(make, steps=STEPS):
    optimizer = sgd()
    return trajectory(optimizer, make(optimizer), steps)


def assert_close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-12 * expected.abs().max().item())


PAIRS = {
    "StepLR": (
        lambda o: L.StepLR(o, 0.1, step_size=300, gamma=0.5),
        lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=300, gamma=0.5),
    ),
    "MultiStepLR": (
        lambda o: L.MultiStepLR(o, 0.1, gamma=0.2, milestones=[100, 700, 1300]),
        lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[100, 700, 1300], gamma=0.2),
    ),
    "ExponentialLR": (
        lambda o: L.ExponentialLR(o, 0.1, total_iters=1, decay_rate=0.998),
        lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.998),
    ),
    "PolynomialLR": (
        lambda o: L.PolynomialLR(o, 0.1, 0.0, total_iters=1500, power=2.0),
        lambda o: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=1500, power=2.0),
    ),
    "CosineAnnealingLR": (
        lambda o: L.CosineAnnealingLR(o, 0.1, T_max=700, eta_min=0.001),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=700, eta_min=0.001),
    ),
    "MultiplicativeLR": (
        lambda o: L.MultiplicativeLR(o, 0.1, coefficient=0.999),
        lambda o: torch.optim.lr_scheduler.MultiplicativeLR(o, lambda epoch: 0.999),
    ),
    "CyclicLR-triangular": (
        lambda o: L.CyclicLR(o, 0.001, 0.1, step_size_up=150, step_size_down=50),
        lambda o: torch.optim.lr_scheduler.CyclicLR(o, 0.001, 0.1, step_size_up=150, step_size_down=50, cycle_momentum=False),
    ),
    "CyclicLR-triangular2": (
        lambda o: L.CyclicLR(o, 0.001, 0.1, step_size_up=200, mode="triangular2"),
        lambda o: torch.optim.lr_scheduler.CyclicLR(o, 0.001, 0.1, step_size_up=200, mode="triangular2", cycle_momentum=False),
    ),
    "CyclicLR-exp_range": (
        lambda o: L.CyclicLR(o, 0.001, 0.1, step_size_up=250, mode="exp_range", gamma=0.999),
        lambda o: torch.optim.lr_scheduler.CyclicLR(o, 0.001, 0.1, step_size_up=250, mode="exp_range", gamma=0.999, cycle_momentum=False),
    ),
    "OneCycleLR": (
        lambda o: L.OneCycleLR(o, 0.1 / 25, max_lr=0.1, total_steps=STEPS),
        lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=STEPS, cycle_momentum=False),
    ),
    "OneCycleLR-three-phase-linear": (
        lambda o: L.OneCycleLR(o, 0.01, max_lr=0.2, total_steps=STEPS, pct_start=0.2, final_div_factor=50, three_phase=True, anneal_strategy="linear"),
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=0.2, total_steps=STEPS, pct_start=0.2, div_factor=20, final_div_factor=50, three_phase=True, anneal_strategy="linear", cycle_momentum=False
        ),
    ),
    "CosineAnnealingWarmRestarts": (
        lambda o: L.CosineAnnealingWarmRestarts(o, 0.1, T_0=170, eta_min=0.001),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=170, eta_min=0.001),
    ),
    "CosineAnnealingWarmRestarts-T_mult": (
        lambda o: L.CosineAnnealingWarmRestarts(o, 0.1, T_0=30, T_mult=2, eta_min=0.0),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=30, T_mult=2),
    ),
    "CosineAnnealingWarmRestarts-T_mult3": (
        lambda o: L.CosineAnnealingWarmRestarts(o, 0.1, T_0=7, T_mult=3, eta_min=0.01),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=7, T_mult=3, eta_min=0.01),
    ),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_matches_torch(name):
    ours, theirs = PAIRS[name]
    assert_close(wse_trajectory(ours), torch_trajectory(theirs))


def test_polynomial_cycle_follows_keras_polynomial_decay():
    # Keras: decay_steps *= ceil(step / decay_steps) (1 at step 0); no clamping.
    initial, end, total, power = 0.1, 0.01, 300, 1.5
    expected = []
    for t in range(STEPS):
        span = total * max(1, math.ceil(t / total))
        expected.append((initial - end) * (1 - t / span) ** power + end)
    actual = wse_trajectory(lambda o: L.PolynomialLR(o, initial, end, total, power=power, cycle=True))
    assert_close(actual, torch.tensor(expected, dtype=torch.float64))
    assert actual[301] > actual[300], "the decay restarts after each period"


def test_lambda_multiplies_initial_once_by_the_product_of_lambdas():
    expected = torch.tensor([0.1 * (t / 30) * 0.95**t for t in range(STEPS)], dtype=torch.float64)
    assert_close(wse_trajectory(lambda o: L.LambdaLR(o, 0.1)), expected)


def test_lambda_with_user_functions_matches_torch_lambda():
    class Warmup(L.LambdaLR):
        def set_value_lambda(self):
            return lambda step: min(1.0, (step + 1) / 100) if not isinstance(step, torch.Tensor) else torch.clamp((step + 1) / 100, max=1.0)

    ours = wse_trajectory(lambda o: Warmup(o, 0.1))
    theirs = torch_trajectory(lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: min(1.0, (e + 1) / 100)))
    assert_close(ours, theirs)
