"""Checkpoints hold the user's Python floats, not the tensors the strategy put in their place.

For the fit the strategy switches the ``wse.optim`` schedulers to tensor values (0-d
float64 tensors updated in place, so the schedule is part of the step's graph). Those
tensors stand for the floats the user configured; a checkpoint written during the fit
holds the floats, so it is the same whatever ``check`` was, and reads as any Lightning
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
    buffers = {id(value) for scheduler in switched for value in scheduler.get_last_value() if value is not None}
    for state in checkpoint.get("optimizer_states", ()):
        for index, group in enumerate(state.get("param_groups", ())):
            state["param_groups"][index] = {
                key: _as_float(value) if id(value) in buffers else value for key, value in group.items()
            }
    switched_ids = {id(scheduler) for scheduler in switched}
    for config, state in zip(configs, checkpoint.get("lr_schedulers", ())):
        if id(config.scheduler) in switched_ids and isinstance(state.get("_last_value"), list):
            state["_last_value"] = [_as_float(value) for value in state["_last_value"]]
