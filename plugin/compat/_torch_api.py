"""What every compat scheduler shares: torch's scheduler type, and values that can live in the graph.

Lightning (``configure_optimizers``), Accelerate (``Accelerator.prepare``) and torch's
own utilities recognise a scheduler by ``isinstance(s, torch.optim.lr_scheduler.LRScheduler)``
and step it with ``step()``. The faces of other libraries are such instances, with
the bookkeeping those callers read (``get_last_lr()``, ``last_epoch``, ``_step_count``);
torch's constructor is not run, because it would overwrite the param groups with
``initial_lr`` and wrap ``optimizer.step``, which the libraries reproduced here do not.

``TensorValues`` holds the in-graph side: one step counter tensor and one 0-d tensor per
param group and key, updated in place, which ``enable_tensor_values`` switches to (the
protocol of ``wse.optim`` schedulers, which the Lightning strategy and the device use).
"""
from __future__ import annotations

from numbers import Number
from typing import Dict, List, Optional, Sequence

import torch


class TorchSchedulerAPI(torch.optim.lr_scheduler.LRScheduler):
    """A ``torch.optim.lr_scheduler.LRScheduler`` for callers that check the type.

    Subclasses set ``optimizer``, count their steps in ``_step_count`` (1 after
    construction, as torch does) and define ``last_epoch``, ``step()``, ``state_dict()``
    and ``load_state_dict()``.
    """

    _step_count = 1

    def get_last_lr(self) -> List[float]:
        """The learning rate of every param group, as written by the last step (a new list)."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def get_lr(self) -> List[float]:
        """The learning rates of the current step (the values in the param groups)."""
        return self.get_last_lr()


def parameters_device(optimizer) -> torch.device:
    """The device of the first parameter (the CPU for an optimizer without any)."""
    return next((p.device for group in optimizer.param_groups for p in group["params"]), torch.device("cpu"))


class TensorValues:
    """A step counter tensor and one 0-d value tensor per (param group, key), written in place.

    The counter is int64 and the values are ``dtype``, all on ``device``. A group added
    to the optimizer later gets its own tensors when it is first written.
    """

    def __init__(self, step: int, keys: Sequence[str], device, dtype: torch.dtype):
        self.step = torch.tensor(step, dtype=torch.int64, device=device)
        self.keys = tuple(keys)
        self.dtype = dtype
        self.buffers: List[Dict[str, torch.Tensor]] = []

    def step_value(self) -> torch.Tensor:
        """The step counter in the values' dtype, for a schedule to evaluate."""
        return self.step.to(self.dtype)

    def _buffers_of(self, index: int) -> Dict[str, torch.Tensor]:
        while len(self.buffers) <= index:
            self.buffers.append(
                {key: torch.zeros((), dtype=self.dtype, device=self.step.device) for key in self.keys}
            )
        return self.buffers[index]

    def write(self, group: dict, index: int, key: str, value) -> None:
        """Copy ``value`` (a number or a 0-d tensor) into the group's tensor, and make the group hold it."""
        buffer = self._buffers_of(index)[key]
        if isinstance(value, torch.Tensor):
            # Not `buffer.copy_(value)`: compiled (aot_eager, inductor) by torch 2.13, an
            # in-place write into a 0-d CPU tensor of a value computed in the graph is lost;
            # the multi-tensor copy is kept.
            torch._foreach_copy_([buffer], [value.to(buffer.dtype)])
        else:
            buffer.fill_(value)
        # The optimizer's load_state_dict replaces the entry with the saved value.
        if group.get(key) is not buffer:
            group[key] = buffer

    def adopt(self, groups: Sequence[dict]) -> None:
        """Turn every group's current values into its tensors (same numbers, now in the graph)."""
        for index, group in enumerate(groups):
            for key in self.keys:
                value = group.get(key)
                if isinstance(value, (Number, torch.Tensor)) and not isinstance(value, bool):
                    self.write(group, index, key, value)


def resolve_device(optimizer, device: Optional[torch.device]) -> torch.device:
    return torch.device(device) if device is not None else parameters_device(optimizer)
