"""Allocate any optimizer's state before its first step, in the layout its own step would create.

A static-graph device compiles the first step, so state that an optimizer creates during
that step (as every ``torch.optim`` optimizer does) would change the graph and the memory
plan after the fact. ``preinitialize`` allocates it at setup instead:

* an optimizer with a ``preinitialize()`` method (every ``wse.optim`` optimizer, or one
  of the user's) allocates its own state;
* a ``torch.optim`` optimizer whose ``step`` is its class's own gets its state from
  torch's own ``_init_group``, the method its first step calls to create the state: it
  is called once per param group, with zero gradients standing in for the missing ones
  (removed again at once). The state is therefore torch's by construction (keys, dtypes,
  devices, the ``step`` counter of fused and capturable optimizers on the device), on
  every torch version, for every class that has an ``_init_group`` (Adafactor and Muon
  included), and no parameter, gradient or hyperparameter changes;
* any other optimizer is refused with a message that says how to fix it.

A table of per-class layouts, rewritten from torch's source, would say the same for the
classes it lists and silently drift when torch changes one; torch's own code cannot.

``torch.optim.SGD`` is the one class whose state is created in the update itself, from
the first gradient, undamped. A zero momentum buffer allocated in advance gives the same
first step when ``dampening == 0`` (the buffer becomes ``momentum * 0 + 1 * grad``, the
gradient itself), so that is what it gets; with ``dampening != 0`` the first step would
differ, and the param group is refused instead.

Framework-free (no Lightning or Accelerate import): both integrations call it, with
their own warning category and their own way of saying how to relax ``strict``.
"""
from __future__ import annotations

import inspect
from typing import List, Optional

import torch

from ..rules import LazyOptimizerStateError, WSERuleWarning, enforce, validate_strict

#: How the message of a refusal tells the user to train anyway, when called directly.
RELAX = "pass strict='warn' or strict='off'"


def _innermost(function):
    # torch wraps each class's `step` in a profiling hook: compare what is inside.
    return inspect.unwrap(function) if callable(function) else function


def _own_torch_class(optimizer: torch.optim.Optimizer) -> Optional[type]:
    """The ``torch.optim`` class whose ``step`` and ``_init_group`` ``optimizer`` runs, if any."""
    for cls in type(optimizer).__mro__:
        if cls is torch.optim.Optimizer or not cls.__module__.startswith("torch.optim"):
            continue
        for method in ("step", "_init_group"):
            if _innermost(getattr(type(optimizer), method, None)) is not _innermost(getattr(cls, method, None)):
                return None  # a subclass with its own step may keep other state: not ours to guess
        return cls
    return None


def torch_classes_in_place() -> List[str]:
    """The ``torch.optim`` classes whose state ``preinitialize`` allocates (SGD included)."""
    return sorted(
        name
        for name, cls in vars(torch.optim).items()
        if isinstance(cls, type)
        and issubclass(cls, torch.optim.Optimizer)
        and (cls is torch.optim.SGD or callable(getattr(cls, "_init_group", None)))
    )


def _trainable(group: dict) -> List[torch.Tensor]:
    return [p for p in group["params"] if p.requires_grad]


def has_all_state(optimizer: torch.optim.Optimizer) -> bool:
    """Whether every trainable parameter already has an entry in ``optimizer.state``."""
    return all(optimizer.state.get(p) for group in optimizer.param_groups for p in _trainable(group))


def _init_groups_as_torch(optimizer: torch.optim.Optimizer, torch_class: type) -> None:
    init_group = torch_class._init_group
    # Every argument after `group` is a list that `_init_group` fills for the update: not needed here.
    lists = len(inspect.signature(init_group).parameters) - 2
    for group in optimizer.param_groups:
        stand_ins = [p for p in _trainable(group) if p.grad is None]
        for p in stand_ins:
            p.grad = torch.zeros_like(p)
        try:
            init_group(optimizer, group, *([] for _ in range(lists)))
        finally:
            for p in stand_ins:
                p.grad = None


def _sgd(optimizer: torch.optim.SGD, strict: str, category: type, relax: str) -> List[int]:
    refused = []
    for index, group in enumerate(optimizer.param_groups):
        if group["momentum"] == 0:
            continue  # torch's SGD keeps no state without momentum
        if group["dampening"] != 0:
            refused.append(index)
            enforce(
                strict,
                LazyOptimizerStateError,
                f"torch.optim.SGD cannot have its state allocated before its first step in param group {index}: "
                f"it has momentum={group['momentum']} with dampening={group['dampening']}, and torch starts the "
                f"momentum buffer from the first gradient undamped (dampening applies from the second step), so a "
                f"buffer allocated in advance would change its first step. Use dampening=0 (then a zero buffer "
                f"gives exactly torch's numbers), or wse.optim.SGD, whose buffer starts at zero and is damped from "
                f"the first step. To train anyway, {relax}.",
                category,
            )
            continue
        for p in _trainable(group):
            if not optimizer.state.get(p):
                optimizer.state[p] = {"momentum_buffer": torch.zeros_like(p, memory_format=torch.preserve_format)}
    return refused


def _counterpart_hint(name: str) -> str:
    from .. import optim as wse_optim

    if isinstance(getattr(wse_optim, name, None), type):
        return f"wse.optim.{name}"
    return "a wse.optim optimizer"


def preinitialize(
    optimizer: torch.optim.Optimizer,
    strict: str = "raise",
    *,
    category: type = WSERuleWarning,
    relax: str = RELAX,
) -> str:
    """Allocate all of ``optimizer``'s state now; return how it was done, in a few words.

    Parameters that already have state (loaded, or allocated by the optimizer itself) and
    parameters that do not require gradients are left alone. ``strict`` says what happens
    to an optimizer whose state cannot be allocated in advance: ``"raise"`` a
    ``LazyOptimizerStateError``, ``"warn"`` (with ``category``), or nothing (``"off"``);
    in the last two cases it keeps creating its state lazily. ``relax`` ends the message
    of a refusal: how the caller's user trains anyway (an integration names its own
    argument, e.g. ``"pass WSEStrategy(strict='warn') or strict='off'"``).

    Returns e.g. ``"AdamW: preinitialize()"``, ``"Adam: torch layout"``, ``"SGD: torch
    layout, lazy in param groups [1]"`` or ``"LBFGS: lazy state (not preinitialized)"``:
    the integrations print it in their setup line.
    """
    validate_strict(strict, "preinitialize")
    name = type(optimizer).__name__
    own = getattr(optimizer, "preinitialize", None)
    if callable(own):
        if not has_all_state(optimizer):
            own()
        return f"{name}: preinitialize()"
    torch_class = _own_torch_class(optimizer)
    if torch_class is torch.optim.SGD:
        refused = _sgd(optimizer, strict, category, relax)
        return f"{name}: torch layout" + (f", lazy in param groups {refused}" if refused else "")
    if torch_class is not None and callable(getattr(torch_class, "_init_group", None)):
        _init_groups_as_torch(optimizer, torch_class)
        if has_all_state(optimizer):
            return f"{name}: torch layout"
    enforce(
        strict,
        LazyOptimizerStateError,
        f"{name} ({type(optimizer).__module__}) is not known to allocate its state before its first step, and a "
        f"static-graph device needs all optimizer state to exist before that step. Use {_counterpart_hint(name)}, "
        f"or give {name} a `preinitialize()` method that allocates all of its state (a stateless optimizer can "
        f"define one that does nothing). Optimizers of torch.optim handled in place: "
        f"{', '.join(torch_classes_in_place())}. To train anyway, {relax}.",
        category,
    )
    return f"{name}: lazy state (not preinitialized)"
