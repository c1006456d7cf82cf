"""What a Hugging Face config tells about its model, read off a meta-device instance.

Only used when transformers is installed: the parameter order (safetensors files sort their
keys, optimizer state is positional), which parameters sit in ``nn.LayerNorm`` modules
(Trainer's no-decay group) and which keys are tied (dropped by ``save_pretrained``).
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

import torch

log = logging.getLogger(__name__)


@dataclass
class Skeleton:
    keys: List[str]              # state_dict() order
    parameters: List[str]        # named_parameters() order (tied weights once)
    layernorm_params: List[str]  # parameters inside nn.LayerNorm modules
    tied: Dict[str, str]         # state_dict key -> the parameter it shares
    shapes: Dict[str, tuple]     # state_dict key -> shape


def skeleton(config: Mapping[str, Any]) -> Optional[Skeleton]:
    """The model's structure from its ``config.json`` content, or None when transformers is
    missing or does not know the architecture."""
    try:
        import transformers
    except ImportError:
        return None
    architectures = config.get("architectures") or []
    cls = getattr(transformers, architectures[0], None) if architectures else None
    if cls is None or "model_type" not in config:
        return None
    with _quiet(transformers):
        try:
            hf_config = transformers.AutoConfig.for_model(**dict(config))
            with torch.device("meta"):
                model = cls._from_config(hf_config)
        except Exception as error:  # an architecture this transformers cannot build: go without
            log.debug("cannot build %s from its config on the meta device: %s", architectures[0], error)
            return None
    seen: Dict[int, str] = {}
    tied: Dict[str, str] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        if id(parameter) in seen:
            tied[name] = seen[id(parameter)]
        else:
            seen[id(parameter)] = name
    layernorm = [f"{module_name}.{name}" if module_name else name
                 for module_name, module in model.named_modules() if isinstance(module, torch.nn.LayerNorm)
                 for name, _ in module.named_parameters(recurse=False)]
    state = model.state_dict()
    return Skeleton(keys=list(state), parameters=[n for n, _ in model.named_parameters()],
                    layernorm_params=layernorm, tied=tied, shapes={k: tuple(v.shape) for k, v in state.items()})


@contextlib.contextmanager
def _quiet(transformers):
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)
