"""The values an optimizer reads from its param groups, and which of them changed on the host.

A compiled step reads a Python number in a param group as a constant: a learning rate
written as a new float every step (what a torch scheduler does) is either baked into the
graph -- the schedule silently stops -- or forces a compilation per value. A 0-d tensor
updated in place (``scheduler.enable_tensor_values()`` of the wse schedulers) is an input
of the graph and may change freely.
"""
from __future__ import annotations

from numbers import Number
from typing import Dict, List, Tuple

import torch

# Marks a tensor-valued entry; its identity is kept, not its value.
_TENSOR = "tensor"

GroupValues = Tuple[Dict[str, object], ...]


def _value(value):
    if isinstance(value, torch.Tensor):
        return (_TENSOR, id(value))
    if isinstance(value, (tuple, list)):
        if all(isinstance(item, Number) and not isinstance(item, torch.Tensor) for item in value):
            return tuple(value)
        return None
    if value is None or isinstance(value, (Number, str)):
        return value
    return None


def read_groups(optimizer: torch.optim.Optimizer) -> GroupValues:
    """The hyperparameters of each param group: numbers, flags and tuples by value, tensors by identity."""
    values = []
    for group in optimizer.param_groups:
        entries = {}
        for key, value in group.items():
            if key == "params":
                continue
            entry = _value(value)
            if entry is not None or value is None:
                entries[key] = entry
        values.append(entries)
    return tuple(values)


def _is_tensor(entry) -> bool:
    return isinstance(entry, tuple) and len(entry) == 2 and entry[0] == _TENSOR


def host_changes(before: GroupValues, after: GroupValues) -> List[Tuple[int, str, object, object]]:
    """``(group, key, old, new)`` for each value that changed as a Python value.

    A tensor replaced by another tensor is not one (it stays an input of the graph); a
    tensor replaced by a number, or a number by a tensor, is.
    """
    changes = []
    for index, (old_group, new_group) in enumerate(zip(before, after)):
        for key, new in new_group.items():
            if key not in old_group:
                continue
            old = old_group[key]
            if _is_tensor(old) and _is_tensor(new):
                continue
            if old != new:
                changes.append((index, key, _shown(old), _shown(new)))
    return changes


def _shown(entry):
    return "a tensor" if _is_tensor(entry) else entry
