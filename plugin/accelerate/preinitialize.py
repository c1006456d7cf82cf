"""Allocate every optimizer's state after Accelerate has placed it, before its first step.

The rules are those of ``Trainer(strategy="wse")``: an optimizer with a
``preinitialize()`` method (every ``wse.optim`` optimizer) allocates its own state; a
``torch.optim`` optimizer gets exactly the state its own first step would create; any
other optimizer is refused (``strict="raise"``), warned about, or left lazy.

The strategy's helper (``wse.lightning.preinitialize``) cannot be imported without
importing Lightning, so the torch case is done here the short way: torch's own
``_init_group`` creates a parameter's state the first time it sees the parameter with
a gradient, and nothing else. It is called once per param group with zero gradients
standing in for the missing ones, which are then removed again: the state is torch's
own, by torch's own code, and no parameter or hyperparameter changes.

``torch.optim.SGD`` is the exception: its momentum buffer is created in the update
itself, from the first gradient, undamped. A zero buffer gives the same first step
when ``dampening == 0``; with ``dampening != 0`` it would not, and the group is refused.
"""
from __future__ import annotations

import inspect
from typing import List, Optional

import torch

from .errors import LazyOptimizerStateError
from .options import enforce, validate_strict


def _own_torch_class(optimizer: torch.optim.Optimizer) -> Optional[type]:
    """The ``torch.optim`` class whose ``step`` and ``_init_group`` ``optimizer`` runs, if any."""
    for cls in type(optimizer).__mro__:
        if cls is torch.optim.Optimizer or not cls.__module__.startswith("torch.optim"):
            continue
        for method in ("step", "_init_group"):
            mine = inspect.unwrap(getattr(type(optimizer), method, None) or (lambda: None))
            torch_own = inspect.unwrap(getattr(cls, method, None) or (lambda: None))
            if mine is not torch_own:
                return None  # a subclass with its own step may keep other state
        return cls
    return None


def _trainable(group: dict) -> List[torch.Tensor]:
    return [p for p in group["params"] if p.requires_grad]


def has_all_state(optimizer: torch.optim.Optimizer) -> bool:
    """Whether every trainable parameter already has an entry in ``optimizer.state``."""
    return all(optimizer.state.get(p) for group in optimizer.param_groups for p in _trainable(group))


def _init_groups_as_torch(optimizer: torch.optim.Optimizer, torch_class: type) -> None:
    init_group = torch_class._init_group
    lists = len(inspect.signature(init_group).parameters) - 2  # all but self and group
    for group in optimizer.param_groups:
        stand_ins = [p for p in _trainable(group) if p.grad is None]
        for p in stand_ins:
            p.grad = torch.zeros_like(p)
        try:
            init_group(optimizer, group, *([] for _ in range(lists)))
        finally:
            for p in stand_ins:
                p.grad = None


def _sgd(optimizer: torch.optim.SGD, strict: str) -> List[int]:
    refused = []
    for index, group in enumerate(optimizer.param_groups):
        if group["momentum"] == 0:
            continue  # torch's SGD keeps no state without momentum
        if group["dampening"] != 0:
            refused.append(index)
            enforce(
                strict,
                LazyOptimizerStateError,
                f"torch.optim.SGD cannot have its state allocated before its first step in param group "
                f"{index}: it has momentum={group['momentum']} with dampening={group['dampening']}, and "
                f"torch starts the momentum buffer from the first gradient undamped, so a buffer allocated "
                f"in advance would change its first step. Use dampening=0, or wse.optim.SGD (its buffer "
                f"starts at zero and is damped from the first step); to train anyway, pass strict='warn' "
                f"or strict='off' to wse.accelerate.prepare.",
            )
            continue
        for p in _trainable(group):
            if not optimizer.state.get(p):
                optimizer.state[p] = {"momentum_buffer": torch.zeros_like(p, memory_format=torch.preserve_format)}
    return refused


def preinitialize(optimizer: torch.optim.Optimizer, strict: str = "raise") -> str:
    """Allocate all of ``optimizer``'s state now; return how it was done, in a few words.

    Parameters that already have state (loaded, or allocated by the optimizer itself)
    and frozen parameters are left alone.
    """
    validate_strict(strict)
    name = type(optimizer).__name__
    own = getattr(optimizer, "preinitialize", None)
    if callable(own):
        if not has_all_state(optimizer):
            own()
        return f"{name}: preinitialize()"
    torch_class = _own_torch_class(optimizer)
    if torch_class is torch.optim.SGD:
        refused = _sgd(optimizer, strict)
        return f"{name}: torch layout" + (f", lazy in param groups {refused}" if refused else "")
    if torch_class is not None and callable(getattr(torch_class, "_init_group", None)):
        _init_groups_as_torch(optimizer, torch_class)
        if has_all_state(optimizer):
            return f"{name}: torch layout"
    enforce(
        strict,
        LazyOptimizerStateError,
        f"{name} ({type(optimizer).__module__}) is not known to allocate its state before its first step, "
        f"and a static-graph device needs all optimizer state to exist before that step. Use a wse.optim "
        f"optimizer or a torch.optim one, or give {name} a `preinitialize()` method that allocates all of "
        f"its state (a stateless optimizer can define one that does nothing). To train anyway, pass "
        f"strict='warn' or strict='off' to wse.accelerate.prepare.",
    )
    return f"{name}: lazy state (not preinitialized)"
