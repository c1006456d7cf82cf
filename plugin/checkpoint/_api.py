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


def convert(src: PathLike, dst: PathLike, to: str, *, from_format: Optional[str] = None, model_only: bool = False,
            rename: Any = None, dtype: Any = None, config: Any = None, unsafe: bool = False,
            step: Optional[int] = None, **options: Any) -> Checkpoint:
    """Read ``src`` (format ``from_format`` or detected), translate, write ``dst`` as ``to``.

    ``rename``: a rules file or ``RenameRules`` (strict regex renames of model keys, applied to
    optimizer state alike); ``dtype``: cast model floating-point tensors ("bfloat16", a
    ``torch.dtype``); ``config``: the HF ``config.json`` (path or dict) for hf / hf-trainer
    targets; ``step``: the global step when the source does not record it. Other options go to
    the reader and writer (``param_names``, ``prefix``, ``param_groups``, ``optimizer_layout``,
    ``approximate``, ``overwrite``, ``progress``). ``config`` also tells an Accelerate reader the
    model's structure. Returns the checkpoint as written.
    """
    from . import _translate
    from .names import RenameRules

    target = formats.canonical(to)
    checkpoint = load(src, from_format, model_only=model_only, unsafe=unsafe, config=config, **options)
    if rename is not None:
        rules = rename if isinstance(rename, RenameRules) else RenameRules.from_file(os.fspath(rename))
        checkpoint = _translate.rename(checkpoint, rules)
    if dtype is not None:
        checkpoint = _translate.cast(checkpoint, parse_dtype(dtype))
    if step is not None:
        checkpoint.step = int(step)
    save(checkpoint, dst, target, model_only=model_only, config=config, **options)
    return checkpoint


_DTYPES = {"float32": "float32", "fp32": "float32", "float": "float32", "float16": "float16", "fp16": "float16",
           "half": "float16", "bfloat16": "bfloat16", "bf16": "bfloat16", "float64": "float64", "fp64": "float64",
           "double": "float64"}


def parse_dtype(dtype: Any):
    """A ``torch.dtype`` from a name ("bf16", "torch.float16", ...)."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).lower().removeprefix("torch.")
    if name not in _DTYPES:
        raise CheckpointError(f"unknown dtype {dtype!r}; choose one of float32, float16, bfloat16, float64")
    return getattr(torch, _DTYPES[name])
