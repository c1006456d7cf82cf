"""``hf``: a ``save_pretrained`` directory (``config.json`` + ``model.safetensors`` or shards)."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional

import torch

from .. import _io
from .._transformers import skeleton
from .._translate import _remap
from ..hub import Checkpoint, CheckpointError, LazyStateDict

CONFIG = "config.json"
SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
WEIGHTS = "pytorch_model.bin"
WEIGHTS_INDEX = "pytorch_model.bin.index.json"

#: Where an untied-on-disk output embedding usually comes from, when transformers is missing.
_EMBEDDING_SUFFIXES = ("wte.weight", "embed_tokens.weight", "word_embeddings.weight", "embed_in.weight",
                       "shared.weight", "tok_embeddings.weight")


def has_weights(path: str) -> bool:
    return any(os.path.isfile(os.path.join(path, name)) for name in (SAFE_WEIGHTS, SAFE_INDEX, WEIGHTS, WEIGHTS_INDEX))


def sniff(path: str) -> bool:
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, CONFIG)) and has_weights(path)


def read_weights(path: str, *, unsafe: bool = False) -> Mapping[str, torch.Tensor]:
    """The model tensors of an HF-style directory: safetensors (lazily, shards too) or .bin."""
    if os.path.isfile(os.path.join(path, SAFE_WEIGHTS)):
        model, _ = _io.read_safetensors(os.path.join(path, SAFE_WEIGHTS))
        return model
    if os.path.isfile(os.path.join(path, SAFE_INDEX)):
        index = _io.read_json(os.path.join(path, SAFE_INDEX))
        loaders, info = {}, {}
        shards: Dict[str, LazyStateDict] = {}
        for key, shard in (index.get("weight_map") or {}).items():
            if shard not in shards:
                shard_path = os.path.join(path, shard)
                if not os.path.isfile(shard_path):
                    raise CheckpointError(f"{path}: {SAFE_INDEX} names shard {shard}, which is missing")
                shards[shard] = _io.read_safetensors(shard_path)[0]
            source = shards[shard]
            if key not in source:
                raise CheckpointError(f"{path}/{shard}: has no tensor {key!r}, which {SAFE_INDEX} places there")
            loaders[key] = (lambda source=source, key=key: source[key])
            info[key] = source.info(key)
        return LazyStateDict(loaders, info)
    if os.path.isfile(os.path.join(path, WEIGHTS)):
        return _io.torch_load(os.path.join(path, WEIGHTS), unsafe=unsafe)
    if os.path.isfile(os.path.join(path, WEIGHTS_INDEX)):
        index = _io.read_json(os.path.join(path, WEIGHTS_INDEX))
        model: Dict[str, torch.Tensor] = {}
        for shard in sorted(set((index.get("weight_map") or {}).values())):
            model.update(_io.torch_load(os.path.join(path, shard), unsafe=unsafe))
        return model
    raise CheckpointError(f"{path}: no model weights ({SAFE_WEIGHTS}, {SAFE_INDEX}, {WEIGHTS} or {WEIGHTS_INDEX})")


def complete_model(model: Mapping[str, torch.Tensor], config: Optional[Mapping[str, Any]], checkpoint: Checkpoint,
                   where: str) -> Mapping[str, torch.Tensor]:
    """The model in its module's ``state_dict()`` order with tied keys restored, as far as
    the config tells (through transformers when installed)."""
    structure = skeleton(config) if config else None
    order: List[str] = list(model)
    tied: Dict[str, str] = {}
    if structure is not None:
        order = [key for key in structure.keys if key in model or key in structure.tied]
        order += [key for key in model if key not in set(order)]
        tied = {key: source for key, source in structure.tied.items() if key not in model}
        checkpoint.metadata["layernorm_params"] = structure.layernorm_params
        checkpoint.metadata["parameters"] = [p for p in structure.parameters if p in model]
        checkpoint.metadata["tied"] = dict(structure.tied)
    elif config and config.get("tie_word_embeddings", True) and "lm_head.weight" not in model:
        source = next((key for key in model if key.endswith(_EMBEDDING_SUFFIXES)), None)
        if source is not None:
            tied = {"lm_head.weight": source}
            checkpoint.metadata["tied"] = dict(tied)
            checkpoint.note(f"{where}: restored lm_head.weight from {source} (tie_word_embeddings; install "
                            "transformers for the model's exact structure)")
    order = [key for key in order if key in model or key in tied]
    if isinstance(model, LazyStateDict):
        loaders = {key: (lambda key=tied.get(key, key): model[key]) for key in order}
        info = {key: model.info(tied.get(key, key)) for key in order}
        return LazyStateDict(loaders, info, aliases=tied)
    return {key: model[tied.get(key, key)] for key in order}


def read(path: str, *, unsafe: bool = False, **_: Any) -> Checkpoint:
    config = _io.read_json(os.path.join(path, CONFIG))
    checkpoint = Checkpoint(model={}, metadata={"format": "hf", "config": config,
                                                "versions": {"transformers": config.get("transformers_version")}})
    checkpoint.model = complete_model(read_weights(path, unsafe=unsafe), config, checkpoint, path)
    return checkpoint


def config_for(checkpoint: Checkpoint, config: Any, path: str) -> Dict[str, Any]:
    """The config.json content for a written directory: ``config`` (a path or dict), else the
    source's; without either, a clear error naming ``--config``."""
    content = _config_content(checkpoint, config, path)
    if not content.get("architectures"):
        checkpoint.note(f"{path}: config.json names no 'architectures' (a model built from a config has none "
                        "until save_pretrained); AutoModel and reading the optimizer's parameter order back need it")
    return content


def _config_content(checkpoint: Checkpoint, config: Any, path: str) -> Dict[str, Any]:
    if isinstance(config, (str, os.PathLike)):
        config_path = os.fspath(config)
        if not os.path.isfile(config_path):
            raise CheckpointError(f"config {config_path}: no such file")
        return _io.read_json(config_path)
    if isinstance(config, Mapping):
        return dict(config)
    if hasattr(config, "to_dict"):
        return config.to_dict()
    if checkpoint.metadata.get("config"):
        return dict(checkpoint.metadata["config"])
    raise CheckpointError(
        f"{path}: a Hugging Face directory needs the model's config.json, and the source "
        f"({checkpoint.metadata.get('format', 'checkpoint')}) has none; pass config=CONFIG.json "
        "(--config CONFIG.json), e.g. written by model.config.to_json_file()"
    )


def drop_tied(model: Mapping[str, torch.Tensor], config: Mapping[str, Any], checkpoint: Checkpoint,
              where: str) -> Mapping[str, torch.Tensor]:
    """``save_pretrained`` leaves out keys tied to another parameter; so do we, after checking
    that they hold the same values (else the target would silently load another model)."""
    if not config.get("tie_word_embeddings", True):
        return model
    structure = skeleton(config)
    tied = structure.tied if structure is not None else dict(checkpoint.metadata.get("tied") or {})
    if not tied and "lm_head.weight" in model:
        source = next((key for key in model if key.endswith(_EMBEDDING_SUFFIXES)), None)
        if source is not None:
            tied = {"lm_head.weight": source}
    drop = set()
    for key, source in tied.items():
        if key in model and source in model:
            if not torch.equal(model[key], model[source]):
                raise CheckpointError(f"{where}: config.json ties {key} to {source}, but the checkpoint holds "
                                      "different values for them; set tie_word_embeddings to false in the config")
            drop.add(key)
    return _remap(model, {key: key for key in model if key not in drop})


def write(checkpoint: Checkpoint, path: str, *, overwrite: bool = False, config: Any = None, progress: bool = True,
          **_: Any) -> None:
    config_dict = config_for(checkpoint, config, path)
    if checkpoint.optimizers or checkpoint.schedulers:
        checkpoint.note(f"{path}: a save_pretrained directory holds the model only; optimizer and scheduler "
                        "state left out (write hf-trainer to keep them)")
    with _io.atomic_directory(path, overwrite) as folder:
        write_model(checkpoint, folder, config_dict, path, progress)


def check_fits(model: Mapping[str, torch.Tensor], config: Mapping[str, Any], where: str) -> None:
    """The tensors are the ones the config's model has, with its shapes (when transformers can
    build it): from_pretrained would otherwise initialise what is missing at random, with a
    warning at best."""
    structure = skeleton(config)
    if structure is None:
        return
    from ..hub import tensor_info

    wanted = {key for key in structure.keys if key not in structure.tied}
    have = set(model)
    missing = sorted(key for key in wanted if key not in have)
    unexpected = sorted(key for key in have if key not in set(structure.keys))
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: the tensors do not fit the model of config.json ({(config.get('architectures') or ['?'])[0]}): "
            f"missing {_few(missing)}; unexpected {_few(unexpected)}. Rename keys with --rename RULES.yaml, or check "
            "the key prefix (a LightningModule attribute other than 'model.' is not stripped)"
        )
    for key in sorted(have & set(structure.shapes)):
        shape = tuple(tensor_info(model, key)[1])
        if shape != structure.shapes[key]:
            raise CheckpointError(f"{where}: {key!r} has shape {shape}, the model of config.json {structure.shapes[key]}")


def _few(keys: List[str], limit: int = 6) -> str:
    if not keys:
        return "none"
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def write_model(checkpoint: Checkpoint, folder: str, config: Dict[str, Any], where: str, progress: bool) -> None:
    check_fits(checkpoint.model, config, where)
    model = drop_tied(checkpoint.model, config, checkpoint, where)
    _io.write_json(config, os.path.join(folder, CONFIG))
    _io.write_safetensors(model, os.path.join(folder, SAFE_WEIGHTS), metadata={"format": "pt"},
                          progress=f"writing {SAFE_WEIGHTS}" if progress else None)
