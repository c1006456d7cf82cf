"""``wse.accelerate.prepare``: ``accelerator.prepare`` under the rules of a static-graph accelerator."""
from __future__ import annotations

import weakref
from typing import Any, Callable, Optional, Union

import torch

from ..optim import preinitialize
from . import checkpoint
from .errors import PrepareError, WSEAccelerateWarning
from .launch import check_launch
from .options import RELAX, validate_strict
from .run import AccelerateRun
from .scheduling import PerUpdateScheduler, check_scheduler

_RUNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _is_scheduler(obj) -> bool:
    return isinstance(obj, (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)) or (
        type(obj).__name__ == "AcceleratedScheduler" or isinstance(obj, PerUpdateScheduler)
    )


def _kind(obj) -> Optional[str]:
    if isinstance(obj, torch.nn.Module):
        return "model"
    if isinstance(obj, torch.optim.Optimizer):
        return "optimizer"
    if isinstance(obj, torch.utils.data.DataLoader):
        return "dataloader"
    if _is_scheduler(obj):
        return "scheduler"
    return None


def prepare(
    accelerator,
    *objects: Any,
    strict: str = "raise",
    check: str = "strict",
    verify_steps: int = 3,
    verify_every: Optional[int] = None,
    compile: bool = False,
    compile_backend: Union[str, Callable] = "inductor",
    log_hyperparameters: bool = False,
    device_placement: Optional[list] = None,
):
    """Prepare models, optimizers, dataloaders and schedulers; return them in the same order.

    It is ``accelerator.prepare(*objects)`` (same arguments, same order, same returned
    objects, one object returned alone) with the rules of ``Trainer(strategy="wse")``:

    * each optimizer gets all of its state now, after Accelerate placed it (``wse.optim``
      optimizers allocate their own, ``torch.optim`` ones get torch's own layout, others
      are refused);
    * each scheduler is returned as a ``PerUpdateScheduler`` and steps exactly once per
      real update of its optimizer, on every process: not ``num_processes`` times per
      call (Accelerate's ``AcceleratedScheduler`` does that unless ``split_batches``), not
      on accumulating micro-batches, not on an update the grad scaler skipped. Your
      ``scheduler.step()`` calls may stay; they do nothing more;
    * every update (the micro-batches of one ``accelerator.accumulate`` cycle, or one
      batch) runs as a step of a static-graph device: step 1 captured, the next
      ``verify_steps`` verified, violations raised at your line;
    * ``accelerator.save_state`` / ``load_state`` carry the schedulers and the global step.

    Args:
        accelerator: the ``accelerate.Accelerator`` of the run.
        *objects: models, optimizers, dataloaders, schedulers (a scheduler's optimizer
            must be in the same call).
        strict: what a broken rule of setup does (lazy optimizer state, several
            processes launched into a non-distributed Accelerator): ``"raise"``,
            ``"warn"`` or ``"off"``.
        check: the device's checks: ``"strict"`` raises, ``"warn"`` warns once per kind,
            ``"off"`` checks nothing and costs nothing.
        verify_steps: steps verified after the captured one.
        verify_every: then verify every ``verify_every``-th step (None: never).
        compile: once verified, run the models' forward and the update (optimizer step
            and schedulers) through ``torch.compile``. One process, one optimizer.
        compile_backend: the ``torch.compile`` backend.
        log_hyperparameters: after each update, ``accelerator.log`` the learning rate,
            weight decay and momentum of every param group (the series of Lightning's
            ``LearningRateMonitor``), under the index of the update that used them.
        device_placement: as in ``accelerator.prepare`` (one bool per object; schedulers'
            entries are ignored).

    Returns:
        The prepared objects in the order given; the run itself is
        ``wse.accelerate.state(accelerator)``.
    """
    validate_strict(strict)
    if accelerator in _RUNS:
        raise PrepareError(
            "wse.accelerate.prepare was already called on this Accelerator: prepare every model, optimizer, "
            "dataloader and scheduler of the run in one call (as with accelerator.prepare), or create a new "
            "Accelerator for a new run."
        )
    if device_placement is not None and len(device_placement) != len(objects):
        raise ValueError(
            f"wse.accelerate.prepare: `device_placement` needs one entry per object ({len(objects)}), got "
            f"{len(device_placement)}."
        )
    kinds = []
    for index, obj in enumerate(objects):
        kind = _kind(obj)
        if kind is None:
            raise PrepareError(
                f"wse.accelerate.prepare: argument {index} is a {type(obj).__module__}.{type(obj).__name__}, which "
                f"cannot be placed. It takes torch.nn.Module models, torch.optim optimizers, torch DataLoaders "
                f"and learning-rate / weight-decay schedulers (torch.optim.lr_scheduler or wse.optim). Prepare "
                f"other objects yourself (e.g. accelerator.prepare or .to(accelerator.device))."
            )
        kinds.append(kind)
    check_launch(accelerator, strict)

    placed_indices = [i for i, kind in enumerate(kinds) if kind != "scheduler"]
    placement = [device_placement[i] for i in placed_indices] if device_placement is not None else None
    placed = accelerator.prepare(*(objects[i] for i in placed_indices), device_placement=placement) if placed_indices else ()
    if len(placed_indices) == 1:
        placed = (placed,)
    results = list(objects)
    for index, obj in zip(placed_indices, placed):
        results[index] = obj

    models = [results[i] for i, kind in enumerate(kinds) if kind == "model"] or list(accelerator._models)
    optimizers = [results[i] for i, kind in enumerate(kinds) if kind == "optimizer"]
    loaders = [results[i] for i, kind in enumerate(kinds) if kind == "dataloader"]
    if not models:
        raise PrepareError("wse.accelerate.prepare: pass the model trained (the device steps begin at its forward pass).")
    if not optimizers:
        raise PrepareError("wse.accelerate.prepare: pass the optimizer(s) of the run (the device steps end at their updates).")
    inner = [getattr(optimizer, "optimizer", optimizer) for optimizer in optimizers]
    schedulers, wrappers = [], []
    for index, kind in enumerate(kinds):
        if kind == "scheduler":
            check_scheduler(objects[index], index, inner)
            schedulers.append(objects[index])
            results[index] = wrapper = PerUpdateScheduler(objects[index])
            wrappers.append(wrapper)

    setup = [preinitialize(optimizer, strict, category=WSEAccelerateWarning, relax=RELAX) for optimizer in inner]
    settings = dict(
        check=check, verify_steps=verify_steps, verify_every=verify_every, compile=compile, compile_backend=compile_backend
    )
    if compile and getattr(accelerator, "scaler", None) is not None:
        raise ValueError(
            "wse.accelerate.prepare(compile=True) compiles the update, and a grad scaler decides on the host "
            "whether to skip it. Use bf16 mixed precision (no scaler), or leave compile=False."
        )
    if compile and (accelerator.num_processes > 1 or len(optimizers) != 1):
        raise ValueError(
            f"wse.accelerate.prepare(compile=True) runs the verified step compiled in one process with one "
            f"optimizer; this run has {accelerator.num_processes} process(es) and {len(optimizers)} "
            f"optimizer(s). Leave compile=False (the checks work in every setup)."
        )
    run = AccelerateRun(
        accelerator,
        models,
        optimizers,
        loaders,
        schedulers,
        strict=strict,
        device_settings=settings,
        optimizer_setup=setup,
        log_hyperparameters=log_hyperparameters,
    )
    checkpoint.install(run, wrappers)
    _RUNS[accelerator] = run
    accelerator.print(run.describe())
    return results[0] if len(results) == 1 else tuple(results)


def state(accelerator) -> AccelerateRun:
    """The run ``wse.accelerate.prepare`` set up on ``accelerator`` (global step, device, report)."""
    run = _RUNS.get(accelerator)
    if run is None:
        raise KeyError("This Accelerator was not prepared with wse.accelerate.prepare.")
    return run
