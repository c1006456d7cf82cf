"""Schedules computed inside the step: switch schedulers from Python numbers to in-place tensors."""
from __future__ import annotations

from typing import List, Tuple

import torch


def schedule_in_graph(schedulers: list, device: torch.device) -> Tuple[List, List]:
    """Switch every scheduler that can to tensor values; return (switched here, host-side).

    On the device the schedule is part of the step's graph: its value must be a tensor
    updated in place, not a Python number written into the param groups (which a
    compiled step would read as a constant). The ``wse.optim`` schedulers can be switched
    (``enable_tensor_values``); others, such as ``torch.optim.lr_scheduler``'s, stay
    host-side, and the integration reports them at setup. The tensors are float64 where
    the device has it (not on MPS): a Python float is a float64, so the optimizer is
    given the very value it would be given as a host number. A scheduler the user
    switched already is left as it is, and is in neither list.
    """
    dtype = torch.float32 if device.type == "mps" else torch.float64
    switched, host_side = [], []
    for scheduler in schedulers:
        if getattr(scheduler, "uses_tensor_values", False):
            continue
        enable = getattr(scheduler, "enable_tensor_values", None)
        if callable(enable):
            enable(device=device, dtype=dtype)
            switched.append(scheduler)
        else:
            host_side.append(scheduler)
    return switched, host_side
