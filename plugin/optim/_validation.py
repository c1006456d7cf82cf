"""Hyperparameter checks shared by the optimizers, with messages that say how to fix the value.

A hyperparameter may be a Python number or a 0-d tensor (a scheduler's in-graph value);
a tensor's value is not read back (that would be a host synchronisation), only its
shape and dtype are checked.
"""
from __future__ import annotations

import numbers
from typing import Any

import torch


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_tensor(owner: str, name: str, value: torch.Tensor) -> None:
    if value.numel() != 1 or not value.is_floating_point():
        raise ValueError(
            f"{owner}: `{name}` given as a tensor must be a floating-point tensor with one element, got "
            f"shape {tuple(value.shape)} and dtype {value.dtype}."
        )


def require_number(owner: str, name: str, value: Any) -> bool:
    """Check that ``value`` is a real number or a one-element float tensor; True if it is a number."""
    if isinstance(value, torch.Tensor):
        _check_tensor(owner, name, value)
        return False
    if not _is_number(value):
        raise TypeError(f"{owner}: `{name}` must be a number, got {value!r} ({type(value).__name__}).")
    return True


def require_non_negative(owner: str, name: str, value: Any) -> None:
    if require_number(owner, name, value) and not value >= 0:
        raise ValueError(f"{owner}: invalid `{name}` {value!r}; it must be >= 0.")


def require_in_range(owner: str, name: str, value: Any, low: float, high: float, high_inclusive: bool = False) -> None:
    """``low <= value < high`` (``<= high`` if ``high_inclusive``)."""
    if not require_number(owner, name, value):
        return
    above = value > high if high_inclusive else value >= high
    if not value >= low or above:
        bracket = "]" if high_inclusive else ")"
        raise ValueError(f"{owner}: invalid `{name}` {value!r}; it must be in [{low}, {high}{bracket}.")


def require_pair(owner: str, name: str, value: Any) -> tuple:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{owner}: `{name}` must be a pair of numbers, got {value!r}.")
    return tuple(value)


def require_betas(owner: str, betas: Any) -> None:
    """Both betas in [0, 1)."""
    beta1, beta2 = require_pair(owner, "betas", betas)
    require_in_range(owner, "betas[0]", beta1, 0.0, 1.0)
    require_in_range(owner, "betas[1]", beta2, 0.0, 1.0)


def require_python_number(owner: str, name: str, value: Any) -> None:
    """A hyperparameter that decides which state exists, so it cannot be a tensor."""
    if not _is_number(value):
        raise TypeError(
            f"{owner}: `{name}` decides which state is allocated, so it must be a Python number, got "
            f"{value!r} ({type(value).__name__})."
        )


def require_bool(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: `{name}` must be True or False, got {value!r}.")


def common(owner: str, group: dict) -> None:
    """The checks every optimizer makes: ``lr >= 0`` (when set) and ``weight_decay >= 0``."""
    if group.get("lr") is not None:
        require_non_negative(owner, "lr", group["lr"])
    if "weight_decay" in group:
        require_non_negative(owner, "weight_decay", group["weight_decay"])
