"""WSD checkpoint files: post-decay contents, metadata, safe writing and reading, run-shape checks."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import torch

from .plan import POST_DECAY, PRE_DECAY

__all__ = [
    "metadata",
    "post_decay_checkpoint",
    "require_weights_only",
    "atomic_torch_save",
    "to_cpu",
    "partial_path",
    "replace_path",
    "require_writable_dir",
    "load_checkpoint_file",
    "checkpoint_kind",
    "require_same_shape",
    "require_same_optimizer_shape",
]


def metadata(step: int, current_epoch: int, checkpoint_type: str, total_steps: Optional[int],
             decay_fraction: Optional[float]) -> Dict[str, Any]:
    """The published callback's metadata keys, plus ``current_epoch``."""
    if checkpoint_type not in (PRE_DECAY, POST_DECAY):
        raise ValueError(f"checkpoint_type must be {PRE_DECAY!r} or {POST_DECAY!r}, got {checkpoint_type!r}.")
    return {
        "step": int(step),
        "current_epoch": int(current_epoch),
        "checkpoint_type": checkpoint_type,
        "total_steps": None if total_steps is None else int(total_steps),
        "decay_fraction": None if decay_fraction is None else float(decay_fraction),
        "timestamp": datetime.now().isoformat(),
    }


def post_decay_checkpoint(model_state: Mapping, info: Mapping, optimizer_state: Optional[Mapping] = None,
                          scheduler_state: Optional[Mapping] = None,
                          all_scheduler_states: Optional[List[Mapping]] = None) -> Dict[str, Any]:
    """pytorch-accelerated's export layout: ``model_state_dict``, optional optimizer and scheduler states, metadata.

    ``scheduler_state_dict`` is the WSD scheduler's; with several schedulers all of them
    are also kept under ``lr_schedulers``, in the training loop's order.
    """
    checkpoint: Dict[str, Any] = {"model_state_dict": dict(model_state)}
    if optimizer_state is not None:
        checkpoint["optimizer_state_dict"] = optimizer_state
    if scheduler_state is not None:
        checkpoint["scheduler_state_dict"] = scheduler_state
    if all_scheduler_states is not None and len(all_scheduler_states) > 1:
        checkpoint["lr_schedulers"] = list(all_scheduler_states)
    checkpoint.update(info)
    return checkpoint


def to_cpu(value):
    """Nested containers with every tensor moved to the CPU: an export that loads on any machine."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if type(value) in (dict, OrderedDict):
        return type(value)((k, to_cpu(v)) for k, v in value.items())
    if type(value) in (list, tuple):
        return type(value)(to_cpu(v) for v in value)
    return value


_LEAVES = (type(None), bool, int, float, complex, str, bytes, torch.Tensor, torch.dtype, torch.device, torch.Size)


def require_weights_only(value, where: str = "checkpoint", hint: str = "") -> None:
    """Raise if ``value`` holds anything ``torch.load(weights_only=True)`` would refuse.

    Checked before writing, so that a post-decay checkpoint is never written that its
    users could only open by running pickled code.
    """
    if isinstance(value, _LEAVES):
        return
    if type(value) in (dict, OrderedDict):
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool, type(None), torch.Tensor)):
                raise TypeError(f"{where} has a key of type {type(key).__name__} ({key!r}); {hint}")
            require_weights_only(item, f"{where}[{key!r}]", hint)
        return
    if type(value) in (list, tuple, set):
        for i, item in enumerate(value):
            require_weights_only(item, f"{where}[{i}]", hint)
        return
    raise TypeError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which torch.load(weights_only=True) "
        f"cannot read. {hint}"
    )


def partial_path(path: Path) -> Path:
    """Where ``path`` is written before it is complete: a hidden name in the same directory."""
    return path.with_name(f".{path.name}.partial")


def replace_path(source: Path, target: Path) -> None:
    """Move a finished file or directory onto ``target`` in one step (replacing an older one)."""
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    os.replace(source, target)


def atomic_torch_save(obj, path: Path) -> None:
    """``torch.save`` to a temporary name in the same directory, then rename: never a half-written file."""
    path = Path(path)
    temporary = partial_path(path)
    try:
        torch.save(obj, temporary)
        replace_path(temporary, path)
    except BaseException:
        if temporary.exists():
            temporary.unlink()
        raise


def require_writable_dir(directory: Path, owner: str = "WSDCheckpointCallback") -> Path:
    """Create ``directory`` if needed and prove a file can be written there."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as error:
        raise PermissionError(
            f"{owner}: save_dir {str(directory)!r} is not a writable directory ({error.strerror or error}). "
            f"Pass a save_dir you can write to."
        ) from None
    return directory


def load_checkpoint_file(path: Path, owner: str = "WSDCheckpointCallback") -> Dict[str, Any]:
    """Read a checkpoint without running pickled code."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{owner}: initial_checkpoint {str(path)!r} does not exist. Give the path of a "
            f"checkpoint_<step>_{PRE_DECAY} or checkpoint_<step>_{POST_DECAY}.pt written by an earlier run."
        )
    if path.is_dir():
        raise IsADirectoryError(
            f"{owner}: initial_checkpoint {str(path)!r} is a directory (a sharded checkpoint); start from a "
            f"single-file checkpoint, or resume the run with trainer.fit(ckpt_path=...)."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(
            f"{owner}: initial_checkpoint {str(path)!r} cannot be read safely with "
            f"torch.load(weights_only=True): {str(error).splitlines()[0]}"
        ) from None


def checkpoint_kind(checkpoint: Mapping, path: Path, owner: str = "WSDCheckpointCallback") -> str:
    """PRE_DECAY for a Lightning training state, POST_DECAY for a model export."""
    if "state_dict" in checkpoint and "optimizer_states" in checkpoint:
        return PRE_DECAY
    if "model_state_dict" in checkpoint:
        return POST_DECAY
    raise ValueError(
        f"{owner}: initial_checkpoint {str(path)!r} is neither a Lightning checkpoint (state_dict, "
        f"optimizer_states) nor a post-decay export (model_state_dict); its keys are {sorted(checkpoint)[:10]}."
    )


def require_same_shape(saved: Mapping[str, torch.Tensor], current: Mapping[str, torch.Tensor], path: Path,
                       owner: str = "WSDCheckpointCallback") -> None:
    """The checkpoint's model must have exactly this model's tensor names and shapes."""
    missing = sorted(set(current) - set(saved))
    unexpected = sorted(set(saved) - set(current))
    reshaped = [
        f"{name}: checkpoint {tuple(saved[name].shape)} vs model {tuple(current[name].shape)}"
        for name in current
        if name in saved and isinstance(saved[name], torch.Tensor) and saved[name].shape != current[name].shape
    ]
    if missing or unexpected or reshaped:
        details = []
        if missing:
            details.append(f"missing from the checkpoint: {missing[:5]}")
        if unexpected:
            details.append(f"not in the model: {unexpected[:5]}")
        if reshaped:
            details.append(f"different shapes: {reshaped[:5]}")
        raise ValueError(
            f"{owner}: initial_checkpoint {str(path)!r} was written by a run of another shape ("
            + "; ".join(details)
            + "). Continue from a checkpoint of this model."
        )


def require_same_optimizer_shape(saved: Mapping, optimizer, path: Path, owner: str = "WSDCheckpointCallback") -> None:
    """The checkpoint's optimizer state must have this optimizer's groups and parameter counts."""
    saved_counts = [len(g.get("params", ())) for g in saved.get("param_groups", ())]
    counts = [len(g["params"]) for g in optimizer.param_groups]
    if saved_counts != counts:
        raise ValueError(
            f"{owner}: initial_checkpoint {str(path)!r} has optimizer param groups of {saved_counts} parameters, "
            f"this run's optimizer has {counts}. Continue from a checkpoint of the same model and optimizer."
        )
