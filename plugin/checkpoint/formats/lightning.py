"""``lightning``: a Lightning ``.ckpt`` that ``Trainer.fit(ckpt_path=...)`` resumes from.

The global step Lightning resumes at lives in the loops' progress counters, not in the
top-level ``global_step``; the writer sets both, so the resumed run's ``trainer.global_step``,
its schedulers and its optimizer agree. A written checkpoint ends its epoch: the resumed fit
starts the next epoch at its first batch, as Lightning itself does at an epoch boundary.
"""
from __future__ import annotations

import importlib.metadata
import math
import os
import zipfile
from typing import Any, Dict, Mapping, Optional

import torch

from .. import _io, names as N
from .._stream_save import model_for_save as _model_for_save, save as stream_save
from .._translate import name_optimizer, optimizer_for_target
from ..hub import Checkpoint, CheckpointError

_MARK = b"pytorch-lightning_version"
_STEP_PATH = ("fit_loop", "epoch_loop.automatic_optimization.optim_progress", "optimizer", "step", "total", "completed")
_MANUAL_STEP_PATH = ("fit_loop", "epoch_loop.manual_optimization.optim_step_progress", "total", "completed")


def sniff(path: str) -> bool:
    """A torch.save zip whose pickle names Lightning's version key (read without unpickling)."""
    if not (os.path.isfile(path) and _io.is_torch_zip(path)):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            pickled = next((n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
            return pickled is not None and _MARK in archive.read(pickled)
    except (OSError, zipfile.BadZipFile):
        return False


def read(path: str, *, unsafe: bool = False, model_only: bool = False, param_names: Any = None,
         algorithm: Optional[str] = None, strip_prefix: Optional[str] = None, **_: Any) -> Checkpoint:
    return from_dict(_io.torch_load(path, unsafe=unsafe), path, model_only=model_only, param_names=param_names,
                     algorithm=algorithm, strip_prefix=strip_prefix)


def from_dict(obj: Mapping, path: str, *, model_only: bool = False, param_names: Any = None,
              algorithm: Optional[str] = None, strip_prefix: Optional[str] = None) -> Checkpoint:
    """The hub form of a Lightning checkpoint dict (as ``on_save_checkpoint`` sees it)."""
    if not isinstance(obj, Mapping) or "state_dict" not in obj:
        raise CheckpointError(f"{path}: not a Lightning checkpoint (no 'state_dict')")
    state_dict = obj["state_dict"]
    strip = N.common_prefix(list(state_dict)) if strip_prefix is None else strip_prefix
    model = N.strip_prefix(state_dict, strip, path)
    step = _dig(obj.get("loops") or {}, _STEP_PATH)
    manual = _dig(obj.get("loops") or {}, _MANUAL_STEP_PATH)
    if manual and (not step or manual > step):  # a manually optimized module counts here
        step = manual
    if step is None:
        step = obj.get("global_step")
    checkpoint = Checkpoint(model=model, step=int(step) if step is not None else None, metadata={
        "format": "lightning", "prefix": strip, "epoch": _epochs_done(obj),
        "versions": {"lightning": obj.get("pytorch-lightning_version")},
    })
    if obj.get("hyper_parameters"):
        checkpoint.metadata["hyper_parameters"] = obj["hyper_parameters"]
    if model_only:
        return checkpoint
    param_names = _strip_names(param_names, strip)
    for number, state in enumerate(obj.get("optimizer_states") or []):
        names = param_names[number] if _per_optimizer(param_names) else param_names
        checkpoint.optimizers.append(name_optimizer(
            state, model, where=f"{path} [optimizer_states][{number}]", param_names=names, algorithm=algorithm))
    checkpoint.schedulers = [dict(s) for s in obj.get("lr_schedulers") or []]
    return checkpoint


def _strip_names(names: Any, prefix: str) -> Any:
    """Parameter names as the LightningModule gives them, without the stripped key prefix."""
    if not prefix or names is None or hasattr(names, "named_parameters"):
        return names
    if isinstance(names, str):
        return names[len(prefix):] if names.startswith(prefix) else names
    return [_strip_names(item, prefix) for item in names]


def _per_optimizer(param_names: Any) -> bool:
    """Whether ``param_names`` lists, per optimizer, per group, the names (three levels)."""
    try:
        return isinstance(param_names[0][0], (list, tuple))
    except (TypeError, IndexError, KeyError):
        return False


def _epochs_done(obj: Mapping) -> Optional[float]:
    """Epochs completed, counting the one a last-batch checkpoint closes (the hub's meaning,
    Trainer's ``epoch``); Lightning's own ``epoch`` is the index of the current epoch.

    The fit loop counts an epoch ``started`` when it begins and ``completed`` after its
    epoch-end hooks; ``ModelCheckpoint`` saves on the last batch, in between
    (``completed < started``), so that epoch is done but not yet counted. A checkpoint saved
    after ``fit`` (``completed == started``) has counted it already."""
    loop = (obj.get("loops") or {}).get("fit_loop") or {}
    completed = _dig(loop, ("epoch_progress", "total", "completed"))
    if completed is None:
        return None
    started = _dig(loop, ("epoch_progress", "total", "started"))
    last = bool(_dig(loop, ("epoch_loop.batch_progress", "is_last_batch")))
    closing = last and isinstance(started, int) and completed < started
    return float(completed + (1 if closing else 0))


def _dig(tree: Mapping, path) -> Any:
    for key in path:
        if not isinstance(tree, Mapping) or key not in tree:
            return None
        tree = tree[key]
    return tree


def write(checkpoint: Checkpoint, path: str, *, overwrite: bool = False, prefix: Optional[str] = None,
          param_groups: str = "auto", optimizer_layout: str = "torch", approximate: bool = False,
          progress: bool = True, **_: Any) -> None:
    """``prefix`` is the LightningModule attribute path of the model (``"model."`` for
    ``self.model = ...``, the default unless the source was a Lightning checkpoint with its
    own prefix; ``""`` when the LightningModule's own parameters are the model's)."""
    if prefix is None:
        prefix = checkpoint.metadata.get("prefix") if checkpoint.metadata.get("format") == "lightning" else "model."
    optimizers, schedulers = optimizer_for_target(checkpoint, where=path, param_groups=param_groups,
                                                  layout=optimizer_layout, approximate=approximate)
    step = int(checkpoint.step or 0)
    if step == 0 and optimizers and any(opt["state"] for opt in optimizers):
        raise CheckpointError(f"{path}: the source does not record its global step, which Lightning needs to "
                              "resume; pass step=N (--step N)")
    # a source that has taken no step has closed no epoch: its fit starts at epoch 0, batch 0
    untrained = step == 0 and not checkpoint.metadata.get("epoch")
    epoch = None if untrained else _finishing_epoch(checkpoint.metadata.get("epoch"))
    payload: Dict[str, Any] = {
        "epoch": epoch or 0,
        "global_step": step,
        "pytorch-lightning_version": _lightning_version(),
        "state_dict": N.add_prefix(_model_for_save(checkpoint.model), prefix or ""),
        "loops": loops(step, epoch, scheduler_steps=step if schedulers else 0),
        "callbacks": {},
        "optimizer_states": optimizers,
        "lr_schedulers": schedulers,
    }
    if checkpoint.metadata.get("hyper_parameters"):
        payload["hyper_parameters"] = checkpoint.metadata["hyper_parameters"]
    with _io.atomic_file(path, overwrite) as temporary:
        stream_save(payload, temporary, progress=f"writing {os.path.basename(path)}" if progress else None)


def _finishing_epoch(epoch: Any) -> int:
    """The index of the epoch the checkpoint closes: a source's epoch count 1.0 (one epoch
    done) closes epoch 0; a fractional 1.4 closes epoch 1; Lightning's own int is an index."""
    if isinstance(epoch, float):
        return max(int(math.ceil(epoch)) - 1, 0)
    if isinstance(epoch, int):
        return max(epoch, 0)
    return 0


def _lightning_version() -> str:
    for distribution in ("lightning", "pytorch-lightning"):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "2.6.6"


def _progress(count: int, processed: bool = True, started: bool = True, completed: Optional[int] = None) -> Dict[str, int]:
    out = {"ready": count}
    if started:
        out["started"] = count
    if processed:
        out["processed"] = count
    out["completed"] = count if completed is None else completed
    return out


def loops(step: int, epoch: Optional[int], scheduler_steps: int = 0) -> Dict[str, Any]:
    """Lightning 2.x loop state after ``step`` optimizer steps, at the end of epoch ``epoch``,
    as its ``ModelCheckpoint`` records it on the last batch of an epoch (so that the resumed fit
    starts epoch ``epoch + 1`` at its first batch with ``global_step == step``). ``epoch`` None:
    nothing has run (a fresh fit's state: epoch 0, batch 0, no epoch done)."""
    zero = {"current": _progress(0), "total": _progress(0)}
    idle_batches = dict(zero, is_last_batch=False)
    if epoch is None:
        batches, epochs = idle_batches, zero
    else:
        done = max(step - 1, 0)
        batches = {"current": _progress(step, completed=done), "total": _progress(step, completed=done),
                   "is_last_batch": True}
        epochs = {"current": _progress(epoch + 1, completed=epoch) | {"processed": epoch},
                  "total": _progress(epoch + 1, completed=epoch) | {"processed": epoch}}
    optim = {"optimizer": {
        "step": {"current": {"ready": step, "completed": step}, "total": {"ready": step, "completed": step}},
        "zero_grad": {"current": _progress(step, processed=False), "total": _progress(step, processed=False)},
    }}
    fit_loop = {
        "state_dict": {},
        "epoch_loop.state_dict": {"_batches_that_stepped": max(step - 1, 0)},
        "epoch_loop.batch_progress": batches,
        "epoch_loop.scheduler_progress": {"current": {"ready": scheduler_steps, "completed": scheduler_steps},
                                          "total": {"ready": scheduler_steps, "completed": scheduler_steps}},
        "epoch_loop.automatic_optimization.state_dict": {},
        "epoch_loop.automatic_optimization.optim_progress": optim,
        "epoch_loop.manual_optimization.state_dict": {},
        # both counters: the resumed module's automatic_optimization decides which one is read
        "epoch_loop.manual_optimization.optim_step_progress": {"current": {"ready": step, "completed": step},
                                                               "total": {"ready": step, "completed": step}},
        "epoch_loop.val_loop.state_dict": {},
        "epoch_loop.val_loop.batch_progress": idle_batches,
        "epoch_progress": epochs,
    }
    return {
        "fit_loop": fit_loop,
        "validate_loop": {"state_dict": {}, "batch_progress": idle_batches},
        "test_loop": {"state_dict": {}, "batch_progress": idle_batches},
        "predict_loop": {"state_dict": {}, "batch_progress": zero},
    }
