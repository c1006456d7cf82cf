"""``torch``: a ``torch.save`` file, a bare state dict or a training dict (model, optimizer, ...)."""
from __future__ import annotations

import os
from typing import Any, Dict, Mapping

import torch

from .. import _io, names as N
from .._stream_save import model_for_save, save as stream_save
from .._translate import name_optimizer, optimizer_for_target
from ..hub import Checkpoint, CheckpointError

_MODEL_KEYS = ("model", "state_dict", "model_state_dict", "module", "model_state")
_OPTIMIZER_KEYS = ("optimizer", "optimizer_state_dict", "optim", "optimizer_state")
_SCHEDULER_KEYS = ("scheduler", "lr_scheduler", "scheduler_state_dict", "lr_scheduler_state_dict")
_SCHEDULER_LIST_KEYS = ("schedulers", "lr_schedulers")
_STEP_KEYS = ("step", "global_step", "iteration", "iter", "num_steps")


def sniff(path: str) -> bool:
    return os.path.isfile(path) and _io.is_torch_zip(path)


def is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def read(path: str, *, unsafe: bool = False, model_only: bool = False, param_names: Any = None,
         algorithm: str = None, strip_prefix: str = None, **_: Any) -> Checkpoint:
    obj = _io.torch_load(path, unsafe=unsafe)
    if is_state_dict(obj):
        model, training = obj, {}
    elif isinstance(obj, Mapping):
        key = next((k for k in _MODEL_KEYS if is_state_dict(obj.get(k))), None)
        if key is None:
            raise CheckpointError(
                f"{path}: a torch.save dict without model tensors (looked for a state dict at the top level or "
                f"under {', '.join(_MODEL_KEYS)}); its keys are {sorted(map(str, obj))[:12]}"
            )
        model, training = obj[key], obj
    else:
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state dict or a training dict")
    strip = N.common_prefix(list(model)) if strip_prefix is None else strip_prefix
    model = N.strip_prefix(model, strip, path)
    checkpoint = Checkpoint(model=model, metadata={"format": "torch", "prefix": strip})
    step = next((training[k] for k in _STEP_KEYS if isinstance(training.get(k), (int, torch.Tensor))), None)
    checkpoint.step = int(step) if step is not None else None
    if isinstance(training.get("epoch"), (int, float)):
        checkpoint.metadata["epoch"] = training["epoch"]
    if model_only:
        return checkpoint
    optimizers = []
    opt_key = next((k for k in _OPTIMIZER_KEYS if isinstance(training.get(k), Mapping)), None)
    if opt_key is not None:
        optimizers.append(training[opt_key])
    elif isinstance(training.get("optimizers"), list):
        optimizers.extend(training["optimizers"])
    for number, state in enumerate(optimizers):
        where = f"{path} [{opt_key or f'optimizers[{number}]'}]"
        checkpoint.optimizers.append(name_optimizer(state, model, where=where, param_names=param_names,
                                                    algorithm=algorithm))
    sched_key = next((k for k in _SCHEDULER_KEYS if isinstance(training.get(k), Mapping)), None)
    if sched_key is not None:
        checkpoint.schedulers.append(dict(training[sched_key]))
    else:
        listed = next((training[k] for k in _SCHEDULER_LIST_KEYS if isinstance(training.get(k), list)), [])
        checkpoint.schedulers.extend(dict(s) for s in listed)
    if isinstance(training.get("rng"), Mapping):
        checkpoint.rng = dict(training["rng"])
    return checkpoint


def write(checkpoint: Checkpoint, path: str, *, overwrite: bool = False, param_groups: str = "auto",
          optimizer_layout: str = "torch", approximate: bool = False, prefix: str = "", progress: bool = True,
          **_: Any) -> None:
    """A bare state dict when there is only a model; else ``{"model", "optimizer",
    "scheduler", "step", ...}`` (``optimizers``/``schedulers`` lists when there are several)."""
    optimizers, schedulers = optimizer_for_target(checkpoint, where=path, param_groups=param_groups,
                                                  layout=optimizer_layout, approximate=approximate)
    model = N.add_prefix(model_for_save(checkpoint.model), prefix)
    if not optimizers and not schedulers and checkpoint.step is None:
        payload: Dict[str, Any] = model
    else:
        payload = {"model": model}
        if len(optimizers) == 1:
            payload["optimizer"] = optimizers[0]
        elif optimizers:
            payload["optimizers"] = optimizers
        if len(schedulers) == 1:
            payload["scheduler"] = schedulers[0]
        elif schedulers:
            payload["schedulers"] = schedulers
        if checkpoint.step is not None:
            payload["step"] = int(checkpoint.step)
        if "epoch" in checkpoint.metadata:
            payload["epoch"] = checkpoint.metadata["epoch"]
        if checkpoint.rng:
            payload["rng"] = checkpoint.rng
    with _io.atomic_file(path, overwrite) as temporary:
        stream_save(payload, temporary, progress=f"writing {os.path.basename(path)}" if progress else None)
