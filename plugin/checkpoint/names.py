"""Parameter names: prefixes, tied weights, rename rules, and naming positional optimizer state."""
from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from .hub import CheckpointError, LazyStateDict, tensor_info

#: Prefixes wrappers add: torch.compile, DataParallel/DDP, a LightningModule's ``self.model``.
KNOWN_PREFIXES = ("_orig_mod.", "module.", "model.")

#: Buffers that ``state_dict()`` lists among parameters; the optimizer never holds them.
_BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


def common_prefix(keys: Sequence[str], prefixes: Sequence[str] = KNOWN_PREFIXES) -> str:
    """The wrapper prefix every key shares (``"model._orig_mod."``...), or "" for bare keys.

    ``model.`` is taken once at most: bare Hugging Face models have their own ``model.``.
    """
    keys = list(keys)
    found = ""
    used_model = False
    while keys:
        for prefix in prefixes:
            if prefix == "model." and used_model:
                continue
            if all(key.startswith(prefix) and len(key) > len(prefix) for key in keys):
                found += prefix
                keys = [key[len(prefix):] for key in keys]
                used_model = used_model or prefix == "model."
                break
        else:
            break
    return found


def strip_prefix(model: Mapping[str, torch.Tensor], prefix: str, where: str) -> Dict[str, torch.Tensor]:
    """``model`` with ``prefix`` removed from every key (an error names a key without it)."""
    if not prefix:
        return model if isinstance(model, LazyStateDict) else dict(model)
    out = {}
    for key in model:
        if not key.startswith(prefix):
            raise CheckpointError(f"{where}: key {key!r} does not start with the prefix {prefix!r}")
        out[key[len(prefix):]] = model[key]
    return out


def add_prefix(model: Mapping[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    return {prefix + key: model[key] for key in model}


def tied_duplicates(model: Mapping[str, torch.Tensor]) -> Dict[str, str]:
    """``{later key: first key}`` for keys whose tensor shares storage with an earlier key
    (a tied weight, as ``state_dict()`` and ``torch.load`` give it)."""
    if isinstance(model, LazyStateDict):
        return dict(model.aliases)
    first: Dict[Tuple[int, int, Tuple[int, ...]], str] = {}
    duplicates = {}
    for key, tensor in model.items():
        if not isinstance(tensor, torch.Tensor) or tensor.numel() == 0:
            continue
        identity = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if identity in first:
            duplicates[key] = first[identity]
        else:
            first[identity] = key
    return duplicates


def parameter_candidates(model: Mapping[str, torch.Tensor]) -> List[str]:
    """The keys that are parameters, in order, as well as the state dict alone tells: tied
    duplicates, integer tensors and the usual normalisation buffers are left out."""
    duplicates = tied_duplicates(model)
    names = []
    for key in model:
        if key in duplicates or key.rsplit(".", 1)[-1] in _BUFFER_SUFFIXES:
            continue
        dtype, _ = tensor_info(model, key)
        if not (dtype.is_floating_point or dtype.is_complex):
            continue
        names.append(key)
    return names


def equal_duplicates(model: Mapping[str, torch.Tensor], names: Sequence[str]) -> List[str]:
    """``names`` without keys whose tensor equals an earlier one's: a tied weight stored as a
    copy (cerebras-pytorch writes ``lm_head.weight`` in full). Only for counting parameters."""
    kept: List[str] = []
    by_shape: Dict[Tuple[Tuple[int, ...], torch.dtype], List[str]] = {}
    for name in names:
        dtype, shape = tensor_info(model, name)
        twins = by_shape.setdefault((tuple(shape), dtype), [])
        if any(torch.equal(model[name], model[other]) for other in twins):
            continue
        twins.append(name)
        kept.append(name)
    return kept


def names_from_module(module: Any, hub_keys: Sequence[str]) -> List[str]:
    """A module's ``named_parameters()`` names, matched to the hub's (bare) keys."""
    names = [name for name, _ in module.named_parameters()]
    prefix = common_prefix(names)
    if prefix and not all(name in hub_keys for name in names):
        names = [name[len(prefix):] for name in names]
    return names


# -- Hugging Face Trainer's two param groups ----------------------------------------------

#: Trainer.get_decay_parameter_names: parameters whose lowercased name matches one of these
#: get no weight decay (besides those inside an nn.LayerNorm).
_NO_DECAY_PATTERNS = [re.compile(p) for p in (r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)")]


def hf_trainer_groups(names: Sequence[str], layernorm_params: Optional[set] = None,
                      shapes: Optional[Mapping[str, Sequence[int]]] = None) -> List[List[str]]:
    """``[decay, no_decay]`` as ``transformers.Trainer`` groups ``names`` (in order).

    ``layernorm_params`` names the parameters of ``nn.LayerNorm`` modules when the model is
    known; without it a 1-D ``weight`` of a module whose name reads like a norm (``ln_``,
    ``norm``) counts as one, which holds for the transformers models in use.
    """
    decay, no_decay = [], []
    for name in names:
        lowered = name.lower()
        if any(pattern.search(lowered) for pattern in _NO_DECAY_PATTERNS):
            no_decay.append(name)
        elif layernorm_params is not None:
            (no_decay if name in layernorm_params else decay).append(name)
        elif shapes is not None and len(shapes[name]) == 1 and _reads_like_norm(name):
            no_decay.append(name)
        else:
            decay.append(name)
    return [decay, no_decay]


def _reads_like_norm(name: str) -> bool:
    module = name.rsplit(".", 1)[0].rsplit(".", 1)[-1].lower()
    return module.startswith("ln") or "norm" in module or module.endswith("_ln")


# -- rename rules --------------------------------------------------------------------------

class RenameRules:
    """Regex rename rules for model-zoo style name changes, strict by default.

    Each rule is ``(pattern, replacement)``: the first rule whose pattern matches a key
    (``re.search``) rewrites it with ``re.sub(pattern, replacement, key, count=1)``; a
    replacement of ``None`` drops the key. With ``strict`` (the default) a key no rule
    matches is an error that lists such keys; ``strict: false`` keeps them unchanged.
    """

    def __init__(self, rules: Sequence[Tuple[str, Optional[str]]], strict: bool = True, source: str = "rules"):
        self.source = source
        self.strict = strict
        self.rules = []
        for pattern, replacement in rules:
            try:
                self.rules.append((re.compile(pattern), replacement))
            except re.error as error:
                raise CheckpointError(f"{source}: rename pattern {pattern!r} is not a regular expression: {error}") from None

    @classmethod
    def from_file(cls, path: str) -> "RenameRules":
        """Rules from YAML/JSON: ``{rules: [[pattern, replacement], ...], strict: true}``, a list
        of pairs or of ``{pattern, replacement}`` mappings, or a mapping ``{pattern: replacement}``."""
        import yaml

        if not os.path.isfile(path):
            raise CheckpointError(f"rename rules {path}: no such file")
        with open(path, encoding="utf-8") as handle:
            try:
                data = yaml.safe_load(handle)
            except yaml.YAMLError as error:
                raise CheckpointError(f"rename rules {path}: not valid YAML: {error}") from None
        strict = True
        if isinstance(data, dict) and "rules" in data:
            strict = bool(data.get("strict", True))
            data = data["rules"]
        pairs = []
        if isinstance(data, dict):
            pairs = list(data.items())
        elif isinstance(data, list):
            for item in data:
                if isinstance(item, dict) and "pattern" in item:
                    pairs.append((item["pattern"], item.get("replacement", "")))
                elif isinstance(item, (list, tuple)) and len(item) == 2:
                    pairs.append((item[0], item[1]))
                else:
                    raise CheckpointError(f"rename rules {path}: {item!r} is not a [pattern, replacement] pair")
        else:
            raise CheckpointError(f"rename rules {path}: expected a list of [pattern, replacement] pairs")
        return cls([(str(p), None if r is None else str(r)) for p, r in pairs], strict=strict, source=path)

    def mapping(self, keys: Sequence[str]) -> Dict[str, Optional[str]]:
        """``{old: new}`` for every key (``None``: dropped); errors list unmatched keys (strict)
        and keys that two names would both become."""
        result: Dict[str, Optional[str]] = {}
        unmatched = []
        for key in keys:
            for pattern, replacement in self.rules:
                if pattern.search(key):
                    result[key] = None if replacement is None else pattern.sub(replacement, key, count=1)
                    break
            else:
                unmatched.append(key)
                result[key] = key
        if unmatched and self.strict:
            listed = "\n  ".join(unmatched[:20]) + (f"\n  ... and {len(unmatched) - 20} more" if len(unmatched) > 20 else "")
            raise CheckpointError(
                f"{self.source}: {len(unmatched)} key(s) match no rename rule (rules are strict; add a rule such "
                f"as ['^(.*)$', '\\\\1'] to keep them, or set 'strict: false'):\n  {listed}"
            )
        seen: Dict[str, str] = {}
        for old, new in result.items():
            if new is None:
                continue
            if new in seen:
                raise CheckpointError(f"{self.source}: {seen[new]!r} and {old!r} would both be renamed to {new!r}")
            seen[new] = old
        return result
