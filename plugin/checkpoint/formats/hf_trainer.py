"""``hf-trainer``: a Hugging Face Trainer ``checkpoint-N/`` directory, read and resumable.

Trainer builds two param groups (weight decay / none, see ``names.hf_trainer_groups``) and
resumes from ``optimizer.pt`` + ``scheduler.pt`` together, the step from
``trainer_state.json``, the RNG from ``rng_state.pth``. ``training_args.bin`` is a pickle of
``TrainingArguments``: it is neither read (unless ``unsafe``) nor written.
"""
from __future__ import annotations

import glob
import os
from typing import Any, Dict, Optional

import torch

from .. import _io
from .._translate import name_optimizer, optimizer_for_target
from ..hub import Checkpoint, CheckpointError
from . import hf

OPTIMIZER = "optimizer.pt"
SCHEDULER = "scheduler.pt"
TRAINER_STATE = "trainer_state.json"
RNG = "rng_state.pth"
TRAINING_ARGS = "training_args.bin"


def sniff(path: str) -> bool:
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, TRAINER_STATE)) and hf.has_weights(path)


def read(path: str, *, unsafe: bool = False, model_only: bool = False, param_names: Any = None,
         algorithm: Optional[str] = None, **_: Any) -> Checkpoint:
    config = _io.read_json(os.path.join(path, hf.CONFIG)) if os.path.isfile(os.path.join(path, hf.CONFIG)) else None
    state = _io.read_json(os.path.join(path, TRAINER_STATE))
    checkpoint = Checkpoint(model={}, metadata={
        "format": "hf-trainer", "config": config, "epoch": state.get("epoch"),
        "trainer_state": {k: v for k, v in state.items() if k not in ("log_history",)},
        "versions": {"transformers": (config or {}).get("transformers_version")},
    })
    checkpoint.model = hf.complete_model(hf.read_weights(path, unsafe=unsafe), config, checkpoint, path)
    checkpoint.step = int(state["global_step"]) if state.get("global_step") is not None else None
    for pickled in sorted(glob.glob(os.path.join(path, TRAINING_ARGS))):
        if unsafe:
            checkpoint.metadata["training_args"] = _io.torch_load(pickled, unsafe=True)
        else:
            checkpoint.note(f"{pickled}: skipped (a pickle of TrainingArguments; reading it runs code from the "
                            "file; --unsafe-load reads it)")
    if model_only:
        return checkpoint
    optimizer_file, scheduler_file = os.path.join(path, OPTIMIZER), os.path.join(path, SCHEDULER)
    if os.path.isfile(optimizer_file):
        names = param_names if param_names is not None else checkpoint.metadata.get("parameters")
        if names is None:
            raise CheckpointError(
                f"{optimizer_file}: optimizer state is keyed by position, and the parameter order is not recorded "
                "(model.safetensors sorts its keys); install transformers so that the order is read from "
                "config.json, pass param_names=[...] (--param-names FILE), or convert the model only"
            )
        layernorm = checkpoint.metadata.get("layernorm_params")
        checkpoint.optimizers.append(name_optimizer(
            _io.torch_load(optimizer_file, unsafe=unsafe), checkpoint.model, where=optimizer_file, param_names=names,
            grouping="hf-trainer", algorithm=algorithm, layernorm_params=set(layernorm) if layernorm else None))
    if os.path.isfile(scheduler_file):
        checkpoint.schedulers.append(dict(_io.torch_load(scheduler_file, unsafe=unsafe)))
    rng_files = [os.path.join(path, RNG)] + sorted(glob.glob(os.path.join(path, "rng_state_*.pth")))
    rng_file = next((f for f in rng_files if os.path.isfile(f)), None)
    if rng_file is not None:
        checkpoint.rng = dict(_io.torch_load(rng_file, rng=True, unsafe=unsafe))
    return checkpoint


def write(checkpoint: Checkpoint, path: str, *, overwrite: bool = False, config: Any = None,
          optimizer_layout: str = "torch", approximate: bool = False, progress: bool = True,
          trainer_state: Optional[Dict[str, Any]] = None, **_: Any) -> None:
    """``trainer_state`` overrides entries of ``trainer_state.json`` (``train_batch_size``,
    ``logging_steps``, ``save_steps``...: Trainer warns when they differ from its arguments)."""
    config_dict = hf.config_for(checkpoint, config, path)
    optimizers, schedulers = optimizer_for_target(checkpoint, where=path, param_groups="hf-trainer",
                                                  layout=optimizer_layout, approximate=approximate)
    if len(optimizers) > 1:
        raise CheckpointError(f"{path}: Trainer resumes one optimizer; the source has {len(optimizers)}")
    if len(schedulers) > 1:
        raise CheckpointError(f"{path}: Trainer resumes one LR scheduler; the source has {len(schedulers)}")
    if optimizers and not schedulers:
        raise CheckpointError(f"{path}: Trainer loads optimizer.pt only together with scheduler.pt, and the source "
                              "has no scheduler state; convert the model only, or add a scheduler to the source run")
    if optimizers and checkpoint.step is None:
        raise CheckpointError(f"{path}: the source does not record its global step, which trainer_state.json needs; "
                              "pass step=N (--step N)")
    with _io.atomic_directory(path, overwrite) as folder:
        hf.write_model(checkpoint, folder, config_dict, path, progress)
        if optimizers:
            torch.save(optimizers[0], os.path.join(folder, OPTIMIZER))
            torch.save(schedulers[0], os.path.join(folder, SCHEDULER))
        _io.write_json(_trainer_state(checkpoint, trainer_state or {}), os.path.join(folder, TRAINER_STATE))
        rng = rng_state(checkpoint.rng)
        if rng is not None:
            torch.save(rng, os.path.join(folder, RNG))


def _trainer_state(checkpoint: Checkpoint, overrides: Dict[str, Any]) -> Dict[str, Any]:
    """``trainer_state.json``: the source's when it was a Trainer's, with the step it resumes at."""
    previous = dict(checkpoint.metadata.get("trainer_state") or {}) if checkpoint.metadata.get("format") == "hf-trainer" else {}
    step = int(checkpoint.step or 0)
    epoch = checkpoint.metadata.get("epoch")
    state = {
        "best_global_step": None, "best_metric": None, "best_model_checkpoint": None,
        "epoch": float(epoch) if isinstance(epoch, (int, float)) else 0.0,
        "eval_steps": 500, "global_step": step, "is_hyper_param_search": False, "is_local_process_zero": True,
        "is_world_process_zero": True, "log_history": [], "logging_steps": 500, "max_steps": step,
        "num_input_tokens_seen": 0, "num_train_epochs": 0, "save_steps": 500,
        "stateful_callbacks": {"TrainerControl": {"args": {
            "should_epoch_stop": False, "should_evaluate": False, "should_log": False, "should_save": True,
            "should_training_stop": False}, "attributes": {}}},
        "total_flos": 0, "train_batch_size": 1, "trial_name": None, "trial_params": None,
    }
    state.update(previous)
    state.update(overrides)
    state["global_step"] = step
    state["best_model_checkpoint"] = None  # an absolute path of the source's machine
    return state


def rng_state(rng: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """Trainer's ``rng_state.pth`` layout from the hub's RNG, when it has the CPU generator."""
    if not rng or "cpu" not in rng:
        return None
    out = {key: rng[key] for key in ("python", "numpy", "cpu", "cuda") if key in rng}
    return out
