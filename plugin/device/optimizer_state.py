"""Snapshots of optimizer state, to find state created, replaced or reshaped after step 1.

On the hardware every optimizer-state tensor is allocated once, when the graph is
compiled, and updated in place afterwards. A snapshot records, per parameter and key,
the identity, storage, shape, dtype and device of each state tensor; comparing it with
the state later says exactly which entry appeared, was re-allocated or changed shape.
"""
from __future__ import annotations

from typing import Dict, List

import torch

from .signature import format_signature

# (kind, identity, storage, shape, dtype, device) for tensors; (kind, type) otherwise.
_Entry = tuple


def _entry(value) -> _Entry:
    if isinstance(value, torch.Tensor):
        return ("tensor", id(value), _storage(value), value.shape, value.dtype, value.device)
    return ("value", type(value))


def _storage(tensor: torch.Tensor) -> int:
    try:
        return tensor.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):  # tensors without storage (meta, some subclasses)
        return 0


def _unnamed(param: torch.Tensor) -> str:
    return f"<unnamed {format_signature(('T', param.shape, param.dtype, param.device))}>"


def _tensor_text(entry: _Entry) -> str:
    return format_signature(("T", entry[3], entry[4], entry[5]))


class StateSnapshot:
    """The state of one optimizer at one moment: ``{id(param): {key: entry}}``."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.entries: Dict[int, Dict[str, _Entry]] = {
            id(param): {key: _entry(value) for key, value in state.items()}
            for param, state in optimizer.state.items()
        }
        self.params = {id(param): param for param in optimizer.state}

    def created_any(self, other: "StateSnapshot") -> bool:
        """Whether ``other`` (later) holds entries this one lacks."""
        return any(key not in self.entries.get(pid, {}) for pid, keys in other.entries.items() for key in keys)

    def changes(self, later: "StateSnapshot", names: Dict[int, str]) -> List[str]:
        """One line per difference between this snapshot and a later one."""
        lines: List[str] = []
        for pid, keys in later.entries.items():
            name = names.get(pid) or _unnamed(later.params[pid])
            before = self.entries.get(pid)
            if before is None:
                created = ", ".join(f"'{key}'" for key in keys)
                lines.append(f"state of parameter {name} was created: {created or 'an empty entry'}")
                continue
            for key, entry in keys.items():
                old = before.get(key)
                if old is None:
                    what = _tensor_text(entry) if entry[0] == "tensor" else entry[1].__name__
                    lines.append(f"'{key}' of parameter {name} was created ({what})")
                elif old[0] != entry[0]:
                    lines.append(f"'{key}' of parameter {name} changed from a {old[0]} to a {entry[0]}")
                elif entry[0] == "tensor":
                    if old[3:] != entry[3:]:
                        lines.append(
                            f"'{key}' of parameter {name} changed from {_tensor_text(old)} to {_tensor_text(entry)}"
                        )
                    elif old[1] != entry[1] or old[2] != entry[2]:
                        lines.append(
                            f"'{key}' of parameter {name} was replaced by a new tensor "
                            f"(assigned instead of updated in place)"
                        )
            for key in before:
                if key not in keys:
                    lines.append(f"'{key}' of parameter {name} was removed")
        for pid in self.entries:
            if pid not in later.entries:
                lines.append(f"the state of parameter {names.get(pid) or _unnamed(self.params[pid])} was removed")
        return lines


def state_bytes(optimizers) -> int:
    """Bytes held by the optimizers' state tensors (shared storage counted once)."""
    seen = set()
    total = 0
    for optimizer in optimizers:
        for state in optimizer.state.values():
            for value in state.values():
                if isinstance(value, torch.Tensor):
                    key = (_storage(value), value.device)
                    if key not in seen:
                        seen.add(key)
                        total += value.untyped_storage().nbytes()
    return total


def parameter_names(model, optimizers) -> Dict[int, str]:
    """``id(param) -> name``: the model's names, else the param-group position."""
    names: Dict[int, str] = {}
    for index, optimizer in enumerate(optimizers):
        for g, group in enumerate(optimizer.param_groups):
            for i, param in enumerate(group["params"]):
                prefix = f"optimizers[{index}]." if len(optimizers) > 1 else ""
                names[id(param)] = f"{prefix}param_groups[{g}]['params'][{i}]"
    if model is not None:
        for name, param in model.named_parameters():
            names[id(param)] = name
    return names

