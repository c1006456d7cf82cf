"""``StateDictTranslation``: resume a Lightning fit from a checkpoint of any format, and export one."""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Mapping, Optional

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)


class StateDictTranslation(Callback):
    """Load a checkpoint of any supported format into the fit, and write exports in another.

    At fit start, ``load_from`` (a path in any format ``wse.checkpoint.detect`` knows: a Hugging
    Face Trainer ``checkpoint-N/``, an Accelerate ``save_state`` directory, a ``.safetensors``
    file, a ``.mdl``, ...) is loaded into the LightningModule; with ``load_optimizer_states``
    (default) also into its optimizers and LR schedulers, and the global step is set, so that
    ``max_steps`` counts on from the source's step. The names come from the LightningModule
    itself: the source's keys may be bare or carry the module's attribute prefix (``model.``).
    The fit starts its epoch at the first batch (the source's position within an epoch is not
    restored).

    At every checkpoint Lightning saves (``export_on="checkpoint"``, the default) or once at
    the end of the fit (``"end"``), it also writes ``export_to`` in ``export_format``;
    ``{step}`` and ``{epoch}`` in ``export_to`` are filled in (without them each export
    replaces the last). A Hugging Face format takes its ``config.json`` from the module's
    transformers model when ``export_options`` gives no ``config``.

    Args:
        load_from: a checkpoint to start from, or None.
        export_to: where to write exports, or None.
        export_format: the format of the exports (``wse.checkpoint.formats.names()``).
        load_format: the format of ``load_from`` (default: detected).
        load_optimizer_states: also restore optimizer and scheduler states and the step.
        strict: the model's keys must match exactly (as ``load_state_dict(strict=True)``).
        unsafe: allow unpickling files that need it (runs code from the file).
        export_on: ``"checkpoint"`` or ``"end"``.
        load_options, export_options: passed to ``wse.checkpoint.load`` / ``save``.
    """

    def __init__(self, load_from: Optional[str] = None, export_to: Optional[str] = None,
                 export_format: Optional[str] = None, *, load_format: Optional[str] = None,
                 load_optimizer_states: bool = True, strict: bool = True, unsafe: bool = False,
                 export_on: str = "checkpoint", load_options: Optional[Dict[str, Any]] = None,
                 export_options: Optional[Dict[str, Any]] = None):
        from wse.checkpoint import formats

        if export_to is not None and export_format is None:
            raise ValueError("StateDictTranslation: export_to needs export_format (one of "
                             f"{', '.join(formats.names())})")
        if export_format is not None:
            export_format = formats.canonical(export_format)
        if load_format is not None:
            load_format = formats.canonical(load_format)
        if export_on not in ("checkpoint", "end"):
            raise ValueError(f"StateDictTranslation: export_on must be 'checkpoint' or 'end', got {export_on!r}")
        if load_from is not None and not os.path.exists(load_from):
            raise FileNotFoundError(f"StateDictTranslation: load_from {load_from} does not exist")
        self.load_from = load_from
        self.export_to = export_to
        self.export_format = export_format
        self.load_format = load_format
        self.load_optimizer_states = load_optimizer_states
        self.strict = strict
        self.unsafe = unsafe
        self.export_on = export_on
        self.load_options = dict(load_options or {})
        self.export_options = dict(export_options or {})
        self.loaded_step: Optional[int] = None
        self.exports: List[str] = []

    # -- loading ----------------------------------------------------------------------------

    def on_fit_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self.load_from is None:
            return
        from wse.checkpoint import load
        from wse.checkpoint.hub import CheckpointError

        names = _group_names(pl_module, trainer.optimizers)
        flat = [name for groups in names for group in groups for name in group]
        options = dict(self.load_options)
        options.setdefault("param_names", _bare(flat, pl_module))
        checkpoint = load(self.load_from, self.load_format, unsafe=self.unsafe,
                          model_only=not self.load_optimizer_states, **options)
        prefix = _load_model(pl_module, checkpoint.model, self.strict, self.load_from)
        if not self.load_optimizer_states:
            return
        if len(checkpoint.optimizers) > len(trainer.optimizers):
            raise CheckpointError(f"{self.load_from}: holds {len(checkpoint.optimizers)} optimizer states, the "
                                  f"LightningModule configures {len(trainer.optimizers)}")
        _load_optimizers(trainer, checkpoint, names, prefix, self.load_from)
        if checkpoint.step is not None:
            _set_global_step(trainer, int(checkpoint.step))
            self.loaded_step = int(checkpoint.step)
            if trainer.lr_scheduler_configs and not checkpoint.schedulers and checkpoint.step:
                from lightning.pytorch.utilities.rank_zero import rank_zero_warn

                rank_zero_warn(f"StateDictTranslation: {self.load_from} holds no LR scheduler state, so the "
                               f"LightningModule's schedulers start from their first step while the global step is "
                               f"{checkpoint.step}; set their last_epoch in configure_optimizers if the schedule "
                               "should continue")
        log.debug("loaded %s (%s) at step %s", self.load_from, checkpoint.metadata.get("format"), checkpoint.step)

    # -- exporting --------------------------------------------------------------------------

    def on_save_checkpoint(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule",
                           checkpoint: Dict[str, Any]) -> None:
        if self.export_to is not None and self.export_on == "checkpoint":
            self._export(trainer, pl_module, checkpoint)

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self.export_to is not None and self.export_on == "end":
            self._export(trainer, pl_module, _live_checkpoint(trainer, pl_module))

    def _export(self, trainer, pl_module, lightning_checkpoint: Mapping[str, Any]) -> None:
        if not trainer.is_global_zero:
            return
        from wse.checkpoint import save
        from wse.checkpoint.formats.lightning import from_dict

        names = _group_names(pl_module, trainer.optimizers)
        hub = from_dict(lightning_checkpoint, "the fit's checkpoint", param_names=names)
        hub.step = trainer.global_step
        target = self.export_to.format(step=trainer.global_step, epoch=trainer.current_epoch)
        options = dict(self.export_options)
        if self.export_format in ("hf", "hf-trainer") and "config" not in options:
            config = _transformers_config(pl_module, hub.metadata.get("prefix", ""))
            if config is not None:
                options["config"] = config
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)  # as ModelCheckpoint makes dirpath
        options.setdefault("overwrite", True)
        options.setdefault("progress", False)
        save(hub, target, self.export_format, **options)
        self.exports.append(target)
        log.debug("exported step %d to %s (%s)", trainer.global_step, target, self.export_format)

    def state_dict(self) -> Dict[str, Any]:
        return {"loaded_step": self.loaded_step, "exports": list(self.exports)}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.loaded_step = state_dict.get("loaded_step")
        self.exports = list(state_dict.get("exports", []))


def _group_names(pl_module, optimizers) -> List[List[List[str]]]:
    """For each optimizer, for each param group, the LightningModule's names of its params."""
    by_id = {}
    for name, parameter in pl_module.named_parameters():
        by_id.setdefault(id(parameter), name)
    out = []
    for optimizer in optimizers:
        groups = []
        for group in optimizer.param_groups:
            groups.append([by_id.get(id(p), f"<unnamed {i}>") for i, p in enumerate(group["params"])])
        out.append(groups)
    return out


def _bare(names: List[str], pl_module) -> Optional[List[str]]:
    """The module's parameter names without the prefix its state dict keys share."""
    if not names:
        return None
    from wse.checkpoint.names import common_prefix

    prefix = common_prefix(list(pl_module.state_dict()))
    return [name[len(prefix):] if name.startswith(prefix) else name for name in names]


def _load_model(pl_module, model: Mapping[str, torch.Tensor], strict: bool, where: str) -> str:
    """Load the hub's tensors into the module, finding the prefix that makes its keys match."""
    from wse.checkpoint.hub import CheckpointError
    from wse.checkpoint.names import common_prefix, tied_duplicates

    own = pl_module.state_dict()
    keys = list(model)
    candidates = [common_prefix(list(own)), ""]
    prefix = next((p for p in candidates if all(p + key in own for key in keys)), None)
    if prefix is None:
        prefix = max(candidates, key=lambda p: sum(p + key in own for key in keys))
    state = {prefix + key: model[key] for key in keys}
    # A tied weight stored once (safetensors drops the copy): take it from its twin.
    for later, first in tied_duplicates(own).items():
        if later not in state and first in state:
            state[later] = state[first]
        elif first not in state and later in state:
            state[first] = state[later]
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    if strict and (missing or unexpected):
        raise CheckpointError(
            f"{where}: the checkpoint does not fit the LightningModule: missing {missing[:8]}"
            f"{' ...' if len(missing) > 8 else ''}, unexpected {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}; "
            "pass strict=False to load what fits"
        )
    for key, tensor in list(state.items()):
        if key in own and tuple(own[key].shape) != tuple(tensor.shape):
            raise CheckpointError(f"{where}: {key!r} has shape {tuple(tensor.shape)} in the checkpoint, "
                                  f"{tuple(own[key].shape)} in the LightningModule")
    pl_module.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return prefix


def _load_optimizers(trainer, checkpoint, names, prefix: str, where: str) -> None:
    from wse.checkpoint._translate import regroup_scheduler
    from wse.checkpoint.optim_state import from_hub, group_mapping, regroup
    from wse.optim import Optimizer as CerebrasOptimizer

    mappings = []
    for number, (optimizer, opt) in enumerate(zip(trainer.optimizers, checkpoint.optimizers)):
        target = [[name[len(prefix):] if name.startswith(prefix) else name for name in group] for group in names[number]]
        fitted = regroup(opt, target, where)
        # wse.optim's optimizers keep the Cerebras layout (beta powers, its eps placement)
        layout = "cerebras" if isinstance(optimizer, CerebrasOptimizer) else "torch"
        optimizer.load_state_dict(from_hub(fitted, where=where, layout=layout))
        mappings.append(group_mapping(opt, fitted))
    configs = trainer.lr_scheduler_configs
    for number, state in enumerate(checkpoint.schedulers[:len(configs)]):
        mapping = mappings[0] if len(mappings) == 1 else list(range(len(configs[number].scheduler.optimizer.param_groups)))
        configs[number].scheduler.load_state_dict(regroup_scheduler(state, mapping, where))


def _set_global_step(trainer, step: int) -> None:
    """Set the counters ``trainer.global_step`` reads, as a restored Lightning checkpoint does."""
    loop = trainer.fit_loop.epoch_loop
    progress = loop.automatic_optimization.optim_progress.optimizer.step
    progress.total.ready = progress.total.completed = step
    manual = loop.manual_optimization.optim_step_progress
    manual.total.ready = manual.total.completed = step if not trainer.lightning_module.automatic_optimization else 0
    loop._batches_that_stepped = step


def _live_checkpoint(trainer, pl_module) -> Dict[str, Any]:
    return {
        "state_dict": pl_module.state_dict(),
        "optimizer_states": [optimizer.state_dict() for optimizer in trainer.optimizers],
        "lr_schedulers": [config.scheduler.state_dict() for config in trainer.lr_scheduler_configs],
        "global_step": trainer.global_step,
        "epoch": trainer.current_epoch,
    }


def _transformers_config(pl_module, prefix: str):
    owner = pl_module
    for part in [p for p in prefix.split(".") if p]:
        owner = getattr(owner, part, None)
    config = getattr(owner, "config", None)
    if not hasattr(config, "to_dict"):
        return None
    content = config.to_dict()
    if not content.get("architectures"):  # as save_pretrained records it, so Auto classes can load it
        content["architectures"] = [type(owner).__name__]
    return content
