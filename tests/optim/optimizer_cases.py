"""The optimizer trajectories checked against stored golden values, and how they are driven.

Every case trains the same small model for ``STEPS`` steps in float64: two param groups
(the second with its own learning rate) holding a 3x4 matrix, a 4-vector, a 1-element
tensor and a 2x2x3 tensor that gets no gradient on every third step (so skipped
parameters are covered). The gradients are ``0.5 * p`` (a quadratic pull towards zero)
plus noise from a 64-bit linear congruential generator: fixed numbers that depend on
nothing but the step, so the golden values can never drift with a library version.

The golden values (``golden/optimizers.json``) hold the parameters after
``CHECKPOINTS`` steps and the optimizer state after the last, computed by cerebras-pytorch 2.10.0 with float64 as the default
dtype, except NAdam's, computed by torch.optim.NAdam (see ``wse.optim.NAdam``).
"""
from __future__ import annotations

from typing import Dict, List

import torch

STEPS = 100
CHECKPOINTS = (50, 100)
SHAPES = ((3, 4), (4,), (1,), (2, 2, 3))
SOMETIMES = 3  # index of the parameter that skips every third step
SECOND_GROUP_LR_SCALE = 0.5

_MULTIPLIER = 6364136223846793005
_INCREMENT = 1442695040888963407


def noise(seed: int, count: int) -> List[float]:
    """``count`` numbers in [-1, 1) from a 64-bit LCG seeded with ``seed``."""
    state = (seed * _MULTIPLIER + _INCREMENT) % 2**64
    values = []
    for _ in range(count):
        state = (state * _MULTIPLIER + _INCREMENT) % 2**64
        values.append((state >> 11) / 2**53 * 2.0 - 1.0)
    return values


def _tensor(seed: int, shape) -> torch.Tensor:
    count = 1
    for size in shape:
        count *= size
    return torch.tensor(noise(seed, count), dtype=torch.float64).reshape(shape)


def initial_params() -> List[torch.nn.Parameter]:
    return [torch.nn.Parameter(_tensor(1000 + i, shape)) for i, shape in enumerate(SHAPES)]


def param_groups(params, kwargs: Dict) -> List[Dict]:
    """Two groups; the second scales the learning rate (when the case sets one)."""
    second = {"params": params[2:]}
    if kwargs.get("lr") is not None:
        second["lr"] = kwargs["lr"] * SECOND_GROUP_LR_SCALE
    return [{"params": params[:2]}, second]


def set_gradients(params, step: int) -> None:
    """The gradients of step ``step`` (0-based)."""
    for i, p in enumerate(params):
        if i == SOMETIMES and step % 3 == 2:
            p.grad = None
            continue
        p.grad = 0.5 * p.detach() + _tensor(100_000 * (step + 1) + i, p.shape)


def train(optimizer_class, kwargs: Dict, steps: int = STEPS, checkpoints=CHECKPOINTS):
    """Train a fresh model with ``optimizer_class(groups, **kwargs)``.

    Returns the parameters at each checkpoint and the optimizer's final state (per
    parameter index, each value flattened to a list of floats).
    """
    params = initial_params()
    optimizer = optimizer_class(param_groups(params, kwargs), **kwargs)
    seen = {}
    for step in range(steps):
        set_gradients(params, step)
        optimizer.step()
        if step + 1 in checkpoints:
            seen[step + 1] = [p.detach().clone() for p in params]
    state = {
        index: {key: torch.as_tensor(value).double().flatten().tolist() for key, value in optimizer.state[p].items()}
        for index, p in enumerate(params)
    }
    return seen, state


# Hyperparameters that decide which state exists, or bound a clamp, stay Python numbers.
PYTHON_ONLY = {"momentum", "dampening", "etas", "step_sizes", "beta1"}


def tensor_hyperparameters(kwargs: Dict, dtype=torch.float64) -> Dict:
    """``kwargs`` with every other number as a 0-d tensor, as a scheduler in tensor mode writes them."""

    def tensor(value):
        return torch.tensor(float(value), dtype=dtype)

    converted = {}
    for key, value in kwargs.items():
        if key in PYTHON_ONLY or isinstance(value, bool) or value is None:
            converted[key] = value
        elif isinstance(value, tuple):
            converted[key] = tuple(tensor(v) for v in value)
        else:
            converted[key] = tensor(value)
    return converted


# name -> (class name, constructor arguments). Every switch of every optimizer appears.
CASES = {
    "SGD": ("SGD", {"lr": 0.05}),
    "SGD_momentum": ("SGD", {"lr": 0.05, "momentum": 0.9}),
    "SGD_dampening": ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    "SGD_nesterov_weight_decay": ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    "SGD_maximize": ("SGD", {"lr": 0.01, "momentum": 0.5, "maximize": True}),
    "Adam": ("Adam", {"lr": 0.01}),
    "Adam_weight_decay": ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    "Adam_amsgrad_betas_eps": ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-4, "amsgrad": True}),
    "AdamW": ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    "AdamW_no_correct_bias": ("AdamW", {"lr": 0.01, "weight_decay": 0.05, "correct_bias": False}),
    "AdamW_amsgrad": ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    "Adadelta": ("Adadelta", {}),
    "Adadelta_rho_eps_weight_decay": ("Adadelta", {"lr": 0.5, "rho": 0.5, "eps": 1e-3, "weight_decay": 0.1}),
    "Adadelta_maximize": ("Adadelta", {"lr": 0.1, "maximize": True}),
    "Adagrad": ("Adagrad", {}),
    "Adagrad_lr_decay_weight_decay": ("Adagrad", {"lr": 0.05, "lr_decay": 0.01, "weight_decay": 0.1}),
    "Adagrad_accumulator_eps_maximize": (
        "Adagrad",
        {"lr": 0.02, "initial_accumulator_value": 0.1, "eps": 1e-3, "maximize": True},
    ),
    "Adamax": ("Adamax", {"lr": 0.01}),
    "Adamax_weight_decay_betas": ("Adamax", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-3, "weight_decay": 0.1}),
    "Adamax_maximize": ("Adamax", {"lr": 0.002, "maximize": True}),
    "ASGD": ("ASGD", {"lr": 0.05}),
    "ASGD_t0": ("ASGD", {"lr": 0.05, "t0": 10}),
    "ASGD_lambd_alpha_weight_decay": ("ASGD", {"lr": 0.05, "lambd": 0.01, "alpha": 0.5, "t0": 30.5, "weight_decay": 0.1}),
    "ASGD_maximize": ("ASGD", {"lr": 0.01, "t0": 5, "maximize": True}),
    "Lamb": ("Lamb", {"lr": 0.01}),
    "Lamb_weight_decay_betas": ("Lamb", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-4, "weight_decay": 0.1}),
    "Lamb_adam": ("Lamb", {"lr": 0.01, "weight_decay": 0.05, "adam": True}),
    "Lion": ("Lion", {"lr": 0.001}),
    "Lion_weight_decay_betas": ("Lion", {"lr": 0.002, "betas": (0.8, 0.95), "weight_decay": 0.1}),
    "NAdam": ("NAdam", {"lr": 0.01}),
    "NAdam_momentum_decay_weight_decay": (
        "NAdam",
        {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "momentum_decay": 0.01, "weight_decay": 0.1},
    ),
    "RAdam": ("RAdam", {"lr": 0.01}),
    "RAdam_weight_decay_betas": ("RAdam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-4, "weight_decay": 0.1}),
    "RMSprop": ("RMSprop", {"lr": 0.01}),
    "RMSprop_momentum_weight_decay": ("RMSprop", {"lr": 0.005, "momentum": 0.9, "weight_decay": 0.1}),
    "RMSprop_centered": ("RMSprop", {"lr": 0.005, "alpha": 0.9, "eps": 1e-4, "centered": True}),
    "RMSprop_centered_momentum": ("RMSprop", {"lr": 0.002, "momentum": 0.5, "centered": True}),
    "Rprop": ("Rprop", {"lr": 0.01}),
    "Rprop_etas_step_sizes": ("Rprop", {"lr": 0.01, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.05)}),
    "Adafactor": ("Adafactor", {"lr": 0.01}),
    "Adafactor_no_scale_parameter": ("Adafactor", {"lr": 0.01, "scale_parameter": False}),
    "Adafactor_weight_decay_eps_decay_rate": (
        "Adafactor",
        {"lr": 0.02, "eps": (1e-20, 1e-2), "decay_rate": -0.5, "weight_decay": 0.1},
    ),
}

# Cases whose golden values come from torch.optim (where wse follows it, not cerebras-pytorch).
FROM_TORCH = {"NAdam", "NAdam_momentum_decay_weight_decay"}
