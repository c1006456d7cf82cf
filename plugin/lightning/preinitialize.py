"""Optimizer state allocated at setup, as ``WSEStrategy`` does it: ``wse.optim.preinitialize``."""
from __future__ import annotations

import torch

from ..optim.preinitialization import preinitialize as _preinitialize
from .errors import WSEStrategyWarning


def preinitialize(optimizer: torch.optim.Optimizer, strict: str = "raise") -> str:
    """``wse.optim.preinitialize`` with the strategy's warning category and advice.

    One mechanism for every integration: see ``wse.optim.preinitialization``. A refusal
    says to pass ``WSEStrategy(strict='warn')`` to train anyway, and warns with
    ``WSEStrategyWarning``.
    """
    return _preinitialize(
        optimizer,
        strict,
        category=WSEStrategyWarning,
        relax="pass WSEStrategy(strict='warn') or strict='off'",
    )
