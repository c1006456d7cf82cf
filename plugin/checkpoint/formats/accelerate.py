"""``accelerate``: an ``Accelerator.save_state`` directory that ``load_state`` accepts.

Accelerate keeps no global step (``random_states_*.pkl["step"]`` counts ``accumulate()``
micro-batches), so the writer adds a JSON sidecar ``wse_state.json`` with the step and the
reader prefers it, then the ``wse_accelerate.json`` of ``wse.accelerate`` runs, then the
optimizer's own step count, then the scheduler's.
"""
from __future__ import annotations

import glob
import os
from typing import Any, Dict, List, Mapping, Optional

import torch

from .. import _io, names as N
from .._translate import materialise, name_optimizer, optimizer_for_target
from ..hub import Checkpoint, CheckpointError
from ..optim_state import steps_taken

SIDECAR = "wse_state.json"
WSE_ACCELERATE = "wse_accelerate.json"
_FILES = ("model.safetensors", "pytorch_model.bin", "optimizer.bin", "random_states_0.pkl")


def sniff(path: str) -> bool:
    if not os.path.isdir(path):
        return False
    has_model = os.path.isfile(os.path.join(path, "model.safetensors")) or os.path.isfile(os.path.join(path, "pytorch_model.bin"))
    marks = os.path.isfile(os.path.join(path, "optimizer.bin")) or bool(glob.glob(os.path.join(path, "random_states_*.pkl"))) \
        or os.path.isfile(os.path.join(path, SIDECAR))
    return has_model and marks


def _suffix(index: int) -> str:
    return f"_{index}" if index else ""


def read(path: str, *, unsafe: bool = False, model_only: bool = False, param_names: Any = None,
         algorithm: Optional[str] = None, config: Any = None, **_: Any) -> Checkpoint:
    """``config``: the Hugging Face ``config.json`` (path or dict) of a transformers model, which
    gives the parameter order and restores the tied weights Accelerate's safetensors drops."""
    safe = os.path.join(path, "model.safetensors")
    if os.path.isfile(safe):
        model, _ = _io.read_safetensors(safe)
        ordered = False  # safetensors sorts its keys
    else:
        model = _io.torch_load(os.path.join(path, "pytorch_model.bin"), unsafe=unsafe)
        ordered = True
    strip = N.common_prefix(list(model), ("module.", "_orig_mod."))
    if strip:
        from .._translate import _remap

        model = _remap(model, {key: key[len(strip):] for key in model})
    checkpoint = Checkpoint(model=model, metadata={"format": "accelerate", "prefix": strip})
    sidecar = _io.read_json(os.path.join(path, SIDECAR)) if os.path.isfile(os.path.join(path, SIDECAR)) else {}
    if config is None and os.path.isfile(os.path.join(path, "config.json")):  # saved beside it
        config = os.path.join(path, "config.json")
    if config is not None:
        from . import hf

        config = hf._config_content(checkpoint, config, path)
        checkpoint.metadata["config"] = config
        checkpoint.model = hf.complete_model(model, config, checkpoint, path)
        ordered = ordered or "parameters" in checkpoint.metadata
    rng_file = os.path.join(path, "random_states_0.pkl")
    rng = dict(_io.torch_load(rng_file, rng=True, unsafe=unsafe)) if os.path.isfile(rng_file) else None
    if rng is not None:
        checkpoint.rng = {"python": rng.get("random_state"), "numpy": rng.get("numpy_random_seed"),
                          "cpu": rng.get("torch_manual_seed")}
        if "torch_cuda_manual_seed" in rng:
            checkpoint.rng["cuda"] = rng["torch_cuda_manual_seed"]
        checkpoint.metadata["accelerator_step"] = rng.get("step")
    for pickled in sorted(glob.glob(os.path.join(path, "custom_checkpoint_*.pkl"))):
        checkpoint.metadata.setdefault("custom_checkpoints", []).append(_io.torch_load(pickled, unsafe=unsafe))
    if not model_only:
        names = param_names if param_names is not None else sidecar.get("parameters") or checkpoint.metadata.get("parameters")
        index = 0
        while os.path.isfile(os.path.join(path, f"optimizer{_suffix(index)}.bin")):
            file = os.path.join(path, f"optimizer{_suffix(index)}.bin")
            if names is None and not ordered:
                raise CheckpointError(
                    f"{file}: optimizer state is keyed by position, and model.safetensors does not record the "
                    "parameter order (it sorts its keys); pass param_names=[name for name, _ in "
                    "model.named_parameters()] (--param-names FILE), or convert the model only"
                )
            checkpoint.optimizers.append(name_optimizer(_io.torch_load(file, unsafe=unsafe), checkpoint.model,
                                                        where=file, param_names=names, algorithm=algorithm))
            index += 1
        index = 0
        while os.path.isfile(os.path.join(path, f"scheduler{_suffix(index)}.bin")):
            checkpoint.schedulers.append(dict(_io.torch_load(os.path.join(path, f"scheduler{_suffix(index)}.bin"),
                                                             unsafe=unsafe)))
            index += 1
    checkpoint.step = _step(checkpoint, sidecar, path)
    if "epoch" in sidecar:
        checkpoint.metadata["epoch"] = sidecar["epoch"]
    return checkpoint


def _step(checkpoint: Checkpoint, sidecar: Mapping[str, Any], path: str) -> Optional[int]:
    if isinstance(sidecar.get("step"), int):
        return sidecar["step"]
    run_file = os.path.join(path, WSE_ACCELERATE)  # written by wse.accelerate.prepare's save_state
    if os.path.isfile(run_file):
        run = _io.read_json(run_file)
        if isinstance(run, dict) and isinstance(run.get("global_step"), int):
            return run["global_step"]
    for opt in checkpoint.optimizers:
        taken = steps_taken(opt)
        if taken is not None:
            checkpoint.note("global step taken from the optimizer's own step count (Accelerate keeps none)")
            return taken
    for state in checkpoint.schedulers:
        if isinstance(state.get("last_epoch"), int):
            checkpoint.note("global step taken from the scheduler's last_epoch (Accelerate keeps none)")
            return state["last_epoch"]
    return None


def _fitted_groups(checkpoint: Checkpoint, param_groups: str) -> List[Dict[str, Any]]:
    """The groups (parameter names) the written optimizer holds: the fitting that wrote it,
    again, on a view with its own metadata, so its notes are not recorded a second time."""
    from .._translate import fit_groups

    view = Checkpoint(model=checkpoint.model, metadata=dict(checkpoint.metadata, notes=[]))
    return fit_groups(view, checkpoint.optimizers[0], param_groups, "")[0].param_groups


def write(checkpoint: Checkpoint, path: str, *, overwrite: bool = False, param_groups: str = "auto",
          optimizer_layout: str = "torch", approximate: bool = False, safe_serialization: bool = True,
          progress: bool = True, **_: Any) -> None:
    optimizers, schedulers = optimizer_for_target(checkpoint, where=path, param_groups=param_groups,
                                                  layout=optimizer_layout, approximate=approximate)
    with _io.atomic_directory(path, overwrite) as folder:
        if safe_serialization:  # as Accelerate: shared (tied) tensors are stored once
            duplicates = N.tied_duplicates(checkpoint.model)
            model = {key: checkpoint.model[key] for key in checkpoint.model if key not in duplicates}
            _io.write_safetensors(model, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"},
                                  progress="writing model.safetensors" if progress else None)
        else:
            torch.save(materialise(checkpoint.model), os.path.join(folder, "pytorch_model.bin"))
        for index, state in enumerate(optimizers):
            torch.save(state, os.path.join(folder, f"optimizer{_suffix(index)}.bin"))
        for index, state in enumerate(schedulers):
            torch.save(state, os.path.join(folder, f"scheduler{_suffix(index)}.bin"))
        rng = checkpoint.rng or {}
        if all(rng.get(key) is not None for key in ("python", "numpy", "cpu")):
            states: Dict[str, Any] = {"step": int(checkpoint.step or 0), "random_state": rng.get("python"),
                                      "numpy_random_seed": rng.get("numpy"), "torch_manual_seed": rng["cpu"]}
            if "cuda" in rng:
                states["torch_cuda_manual_seed"] = rng["cuda"]
            torch.save(states, os.path.join(folder, "random_states_0.pkl"))
        sidecar = {"step": checkpoint.step, "source_format": checkpoint.metadata.get("format")}
        if optimizers:  # the optimizer's parameter order, which model.safetensors does not keep
            sidecar["parameters"] = [[name for name in group["params"]] for group in
                                     _fitted_groups(checkpoint, param_groups)]
        if "epoch" in checkpoint.metadata:
            sidecar["epoch"] = checkpoint.metadata["epoch"]
        _io.write_json(sidecar, os.path.join(folder, SIDECAR))
