"""detect, load, save and convert: the public entry points over the format registry."""
from __future__ import annotations

import os
from typing import Any, Optional, Union

from . import formats
from .hub import Checkpoint, CheckpointError

PathLike = Union[str, "os.PathLike[str]"]


def detect(path: PathLike) -> str:
    """The name of the format ``path`` is in, or a clear error when none recognises it."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such file or directory")
    for name in formats.FORMATS:
        try:
            module = formats.get(name)
        except CheckpointError:
            continue
        if module.sniff(path):
            return name
    raise CheckpointError(
        f"{path}: not a checkpoint in any known format ({', '.join(formats.names())}); "
        "if it is one, name its format with format=... (--from on the command line)"
    )


def load(path: PathLike, format: Optional[str] = None, **options: Any) -> Checkpoint:
    """Read ``path`` into the hub form. ``format`` defaults to ``detect(path)``.

    Options: ``model_only`` (skip optimizer/scheduler state), ``unsafe`` (also unpickle files
    that need it, e.g. HF ``training_args.bin``; runs code from the file), ``param_names``
    (the parameter names in optimizer order, when the file alone does not tell them).
    """
    path = os.fspath(path)
    name = formats.canonical(format) if format else detect(path)
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such file or directory")
    checkpoint = formats.get(name).read(path, **options)
    checkpoint.metadata.setdefault("format", name)
    checkpoint.metadata.setdefault("path", path)
    if options.get("model_only"):
        checkpoint = checkpoint.model_only()
    return checkpoint


def save(checkpoint: Checkpoint, path: PathLike, format: str, **options: Any) -> None:
    """Write ``checkpoint`` to ``path`` in ``format``; nothing is left behind on failure."""
    name = formats.canonical(format)
    if options.get("model_only"):
        checkpoint = checkpoint.model_only()
    formats.get(name).write(checkpoint, os.fspath(path), **options)
