"""The param groups and checkpoints show the user's Python floats, not the strategy's tensors.

For the fit the strategy switches the ``wse.optim`` schedulers to tensor values (0-d
float64 tensors updated in place, so the schedule is part of the step's graph). Those
tensors stand for the floats the user configured: outside the steps the param groups
hold the floats (``FloatsBetweenSteps``), and a checkpoint written during the fit holds
them too, so it is the same whatever ``check`` was and reads as any Lightning
checkpoint does. Loading it puts the tensors back: a scheduler's ``load_state_dict``
writes its value into its own buffers.
"""
from __future__ import annotations

from typing import Iterable, List

import torch


def _as_float(value):
    return value.item() if isinstance(value, torch.Tensor) and value.dim() == 0 else value


def host_values_in_checkpoint(checkpoint: dict, switched: Iterable, configs: List) -> None:
    """Replace, in ``checkpoint``, the value tensors of the ``switched`` schedulers by floats.

    ``configs`` are the fit's scheduler configs, in the order of ``checkpoint["lr_schedulers"]``.
    """
    switched = list(switched)
    if not switched:
        return
    buffers = {
        id(value)
        for scheduler in switched
        if callable(getattr(scheduler, "get_last_value", None))
        for value in scheduler.get_last_value()
        if isinstance(value, torch.Tensor)
    }
    for state in checkpoint.get("optimizer_states", ()):
        for index, group in enumerate(state.get("param_groups", ())):
            state["param_groups"][index] = {
                key: _as_float(value) if id(value) in buffers else value for key, value in group.items()
            }
    switched_ids = {id(scheduler) for scheduler in switched}
    for config, state in zip(configs, checkpoint.get("lr_schedulers", ())):
        if id(config.scheduler) in switched_ids and isinstance(state.get("_last_value"), list):
            state["_last_value"] = [_as_float(value) for value in state["_last_value"]]


class FloatsBetweenSteps:
    """Between steps the param groups hold the user's floats; inside a step, the value tensors.

    The graph reads a schedule's value from a tensor updated in place; everything that
    reads the param groups between steps (Lightning's ``LearningRateMonitor``, a callback,
    a checkpoint) expects the Python number the user configured. So each switched
    scheduler's targeted entries are set to its value as a float when a step ends
    (computed on the host from the closed form: no synchronisation) and back to its
    tensor when the next one begins.
    """

    def __init__(self, schedulers: Iterable):
        self._schedulers = list(schedulers)
        self._tensors: List[tuple] = []  # (param group, key, value tensor) while floats are shown

    def as_floats(self) -> None:
        if self._tensors or not self._schedulers:
            return
        for scheduler in self._schedulers:
            key = getattr(scheduler, "param_group_key", None)
            if key is None or not callable(getattr(scheduler, "host_values", None)):
                continue  # a scheduler that cannot say its value on the host keeps its tensors
            groups = scheduler.optimizer.param_groups
            for group, value, tensor in zip(groups, scheduler.host_values(), scheduler.get_last_value()):
                if value is not None and isinstance(tensor, torch.Tensor) and group.get(key) is tensor:
                    self._tensors.append((group, key, tensor))
                    group[key] = value

    def as_tensors(self) -> None:
        for group, key, tensor in self._tensors:
            group[key] = tensor
        self._tensors = []
