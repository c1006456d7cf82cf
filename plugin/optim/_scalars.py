"""Per-parameter scalar state (``step``, ``beta1_power``...) kept as views of one vector.

The Cerebras optimizers keep some state as a 0-d tensor per parameter. Updated one by
one, 200 parameters cost 200 tiny kernel launches per scalar per step; stored as views
of one vector per (param group, key, device, dtype), the same update is one operation
on the vector, and each parameter's state entry still reads and saves as its own 0-d
tensor (the layout of the published optimizers).
"""
from __future__ import annotations

import operator
from typing import Dict, List, Optional, Sequence, Tuple

import torch


def scalar_dtype(p: torch.Tensor) -> torch.dtype:
    """The dtype of a parameter's scalar state: float32, or float64 for float64 parameters.

    Low-precision parameters (bfloat16, float16) keep their counters and powers in
    float32, as the published optimizers do; float64 parameters keep them in float64,
    so that float64 training is float64 throughout.
    """
    return torch.float64 if p.dtype == torch.float64 else torch.float32


def static_state(tensor: torch.Tensor) -> torch.Tensor:
    """Mark a state tensor as living at a fixed address for the whole run, and return it.

    State is only ever updated in place, so a compiled step may treat it as a fixed
    input (as torch.compile does with ``torch.optim`` state): fewer guards and checks per
    call. Replacing the tensor afterwards (``visit_state``) costs one recompilation.
    """
    from torch._dynamo.decorators import mark_static_address

    mark_static_address(tensor, guard=True)
    return tensor


def new_scalar(value, p: torch.Tensor) -> torch.Tensor:
    """A fresh 0-d state tensor holding ``value``, on ``p``'s device in ``scalar_dtype(p)``."""
    if isinstance(value, torch.Tensor):
        return value.detach().reshape(()).to(device=p.device, dtype=scalar_dtype(p)).clone()
    return torch.tensor(value, dtype=scalar_dtype(p), device=p.device)


PackKey = Tuple[int, str, torch.device, torch.dtype]


class ScalarPacks:
    """The vectors behind an optimizer's scalar state, one per (group, key, device, dtype)."""

    def __init__(self) -> None:
        self._packs: Dict[PackKey, Tuple[torch.Tensor, Tuple[torch.Tensor, ...]]] = {}

    def pack(self, state: dict, groups: Sequence[dict], keys_of_group) -> None:
        """Make the scalar state of every group views of shared vectors.

        ``keys_of_group(group)`` names the scalar keys of a group. Entries that already
        are the views of a pack are left alone; otherwise a new vector is built from the
        current values and the entries are replaced by its views.
        """
        for index, group in enumerate(groups):
            for key in keys_of_group(group):
                members: Dict[Tuple[torch.device, torch.dtype], List[torch.Tensor]] = {}
                for p in group["params"]:
                    if key in state[p]:
                        members.setdefault((p.device, p.dtype), []).append(p)
                for (device, dtype), params in members.items():
                    values = [state[p][key] for p in params]
                    known = self._packs.get((index, key, device, dtype))
                    if known is not None and _same(known[1], values):
                        continue
                    vector = torch.stack(
                        [v.detach().reshape(()).to(device=device, dtype=scalar_dtype(params[0])) for v in values]
                    )
                    # Plain indexing (not unbind): its views may be updated in place in grad mode too.
                    views = tuple(static_state(vector[i]) for i in range(len(params)))
                    static_state(vector)
                    for p, view in zip(params, views):
                        state[p][key] = view
                    self._packs[(index, key, device, dtype)] = (vector, views)

    def vector(self, key: PackKey, values: List[torch.Tensor]) -> Tuple[torch.Tensor, Optional[List[torch.Tensor]]]:
        """``values`` as one vector, and the tensors to write it back to (None if it is their pack)."""
        known = self._packs.get(key)
        if known is not None and _same(known[1], values):
            return known[0], None
        return torch.stack(values), values

    def clear(self) -> None:
        self._packs.clear()


def write_back(vector: torch.Tensor, targets: Optional[List[torch.Tensor]]) -> None:
    """Copy an updated vector into the 0-d state tensors it was stacked from."""
    if targets is not None:
        torch._foreach_copy_(targets, list(vector.unbind(0)))


def _same(views: Tuple[torch.Tensor, ...], values: List[torch.Tensor]) -> bool:
    return len(views) == len(values) and all(map(operator.is_, views, values))
