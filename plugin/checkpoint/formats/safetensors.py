"""``safetensors``: one ``.safetensors`` file, model tensors only, read lazily and written streamed."""
from __future__ import annotations

import os
from typing import Any

from .. import _io, names as N
from ..hub import Checkpoint


def sniff(path: str) -> bool:
    return os.path.isfile(path) and _io.is_safetensors(path)


def read(path: str, *, strip_prefix: str = None, **_: Any) -> Checkpoint:
    model, metadata = _io.read_safetensors(path)
    strip = N.common_prefix(list(model)) if strip_prefix is None else strip_prefix
    if strip:
        model = _strip_lazy(model, strip)
    return Checkpoint(model=model, metadata={"format": "safetensors", "prefix": strip,
                                             "safetensors_metadata": dict(metadata)})


def _strip_lazy(model, prefix):
    from .._translate import _remap

    return _remap(model, {key: key[len(prefix):] for key in model})


def write(checkpoint: Checkpoint, path: str, *, overwrite: bool = False, progress: bool = True,
          keep_tied: bool = True, **_: Any) -> None:
    """Writes every model key (tied weights included, as separate copies: safetensors has no
    aliasing); optimizer and scheduler state have no place here and are left out with a note."""
    if checkpoint.optimizers or checkpoint.schedulers:
        checkpoint.note(f"{path}: safetensors holds model tensors only; optimizer and scheduler state left out")
    model = checkpoint.model
    if not keep_tied:
        duplicates = N.tied_duplicates(model)
        model = {key: model[key] for key in model if key not in duplicates}
    with _io.atomic_file(path, overwrite) as temporary:
        _io.write_safetensors(model, temporary, metadata={"format": "pt"},
                              progress=f"writing {os.path.basename(path)}" if progress else None)
