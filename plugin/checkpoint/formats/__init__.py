"""The registry of checkpoint formats: one module per format, imported only when used.

Each format module defines ``sniff(path) -> bool`` (is this path in my format? cheap, never
raises for a foreign path), ``read(path, **options) -> Checkpoint`` and
``write(checkpoint, path, **options) -> None``. Options a format does not use are ignored,
so callers may pass the same options to every format.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Dict, Tuple

from ..hub import CheckpointError

#: Format name -> module name inside this package, in the order ``detect`` tries them
#: (most specific first: a Lightning .ckpt is also a torch.save file).
FORMATS: Dict[str, str] = {
    "cerebras": "cerebras",
    "safetensors": "safetensors",
    "hf-trainer": "hf_trainer",
    "accelerate": "accelerate",
    "hf": "hf",
    "lightning": "lightning",
    "torch": "torch",
}

#: What each format is, for help texts and errors.
DESCRIPTIONS: Dict[str, str] = {
    "torch": "a torch.save file: a bare state dict or a training dict (model, optimizer, scheduler, step)",
    "safetensors": "one .safetensors file (model tensors only)",
    "lightning": "a Lightning .ckpt that Trainer.fit(ckpt_path=...) resumes from",
    "hf": "a save_pretrained directory (config.json + model.safetensors)",
    "hf-trainer": "a Hugging Face Trainer checkpoint-N/ directory",
    "accelerate": "an Accelerator.save_state directory",
    "cerebras": "a cerebras-pytorch .mdl file (HDF5; needs the wse[cerebras] extra)",
}

ALIASES: Dict[str, str] = {"hf_trainer": "hf-trainer", "pt": "torch", "ckpt": "lightning", "mdl": "cerebras"}


def names() -> Tuple[str, ...]:
    """Every format name, in a stable order for help texts."""
    return tuple(DESCRIPTIONS)


def canonical(name: str) -> str:
    """The registered spelling of a format name, or a clear error listing the known ones."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in FORMATS:
        raise CheckpointError(f"unknown checkpoint format {name!r}; known formats: {', '.join(names())}")
    return key


def get(name: str) -> ModuleType:
    """The module implementing format ``name`` (imported on first use)."""
    key = canonical(name)
    module_name = f"{__name__}.{FORMATS[key]}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        raise CheckpointError(
            f"the {key!r} checkpoint format is not available in this installation of wse "
            f"(module {module_name} is missing)"
        ) from None


def available() -> Tuple[str, ...]:
    """The format names whose module can be imported here, in detection order."""
    found = []
    for name in FORMATS:
        try:
            get(name)
        except CheckpointError:
            continue
        found.append(name)
    return tuple(found)
