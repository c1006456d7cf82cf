"""``torch.save`` of a lazily read model, one tensor in memory at a time.

Tensors are pickled as references and their bytes written one at a time, in torch's own
zip layout, by ``_zipwrite`` (straight from each tensor's memory, a memory-mapped file's
pages included, without the copy and the slow checksum of torch's writer).

The file is what ``torch.save`` writes (``data.pkl`` whose tensors rebuild with
``torch._utils._rebuild_tensor_v2`` from persistent ``("storage", ...)`` ids, then one
``data/<key>`` record per storage), so ``torch.load(weights_only=True)`` and Lightning read
it as their own; only the moment each tensor is loaded differs.
"""
from __future__ import annotations

import collections
import io
import pickle
import sys
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from ._zipwrite import ZipWriter
from .hub import LazyStateDict


class _LazyStorage:
    """Stands for the storage of one lazily loaded tensor while the structure is pickled."""

    def __init__(self, name: str, dtype: torch.dtype, numel: int, load: Callable[[], torch.Tensor]):
        self.name, self.dtype, self.numel, self.load = name, dtype, numel, load


class _LazyTensor:
    """Pickles exactly as a contiguous CPU tensor of ``shape`` on ``storage`` would."""

    def __init__(self, storage: _LazyStorage, shape: Tuple[int, ...]):
        self.storage, self.shape = storage, shape

    def __reduce_ex__(self, protocol):
        stride, step = [], 1
        for size in reversed(self.shape):
            stride.append(step)
            step *= max(int(size), 1)
        args = (self.storage, 0, torch.Size(self.shape), tuple(reversed(stride)), False, collections.OrderedDict())
        if _untyped(self.storage.dtype):  # float8 and the like: as torch pickles them
            return torch._utils._rebuild_tensor_v3, args + (self.storage.dtype,)
        return torch._utils._rebuild_tensor_v2, args


def _untyped(dtype: torch.dtype) -> bool:
    """Whether torch pickles tensors of ``dtype`` on an untyped (byte) storage."""
    return dtype in torch.storage._new_dtypes()


def lazy_model(model: LazyStateDict) -> Dict[str, Any]:
    """Placeholders for every tensor of ``model``; tied keys share one storage, as in memory."""
    storages: Dict[str, _LazyStorage] = {}
    out: Dict[str, Any] = {}
    for name in model:
        dtype, shape = model.info(name)
        source = model.aliases.get(name, name)
        if source not in storages:
            numel = 1
            for size in shape:
                numel *= int(size)
            storages[source] = _LazyStorage(source, dtype, numel, (lambda source=source: model[source]))
        out[name] = _LazyTensor(storages[source], tuple(shape))
    return out


def model_for_save(model) -> Dict[str, Any]:
    """What a writer puts in its payload for ``model``: placeholders when it is lazy (its tensors
    are then read one at a time while written), else the tensors themselves."""
    return lazy_model(model) if isinstance(model, LazyStateDict) else dict(model)


def save(obj: Any, path: str, progress: Optional[str] = None) -> None:
    """Write ``obj`` (which may hold ``lazy_model`` placeholders and ordinary tensors) as
    ``torch.save`` would, loading each placeholder's tensor only while its bytes are written."""
    records: Dict[str, Any] = {}
    keys: Dict[int, str] = {}
    storage_types = torch.storage._dtype_to_storage_type_map()

    def persistent_id(value):
        if isinstance(value, _LazyStorage):
            key = keys.setdefault(id(value), str(len(keys)))
            records[key] = value
            if _untyped(value.dtype):
                nbytes = value.numel * torch.empty((), dtype=value.dtype).element_size()
                return ("storage", torch.UntypedStorage, key, "cpu", nbytes)
            return ("storage", getattr(torch, storage_types[value.dtype]), key, "cpu", value.numel)
        if isinstance(value, torch.UntypedStorage):
            key = keys.setdefault(value._cdata, str(len(keys)))
            records[key] = value
            return ("storage", torch.UntypedStorage, key, "cpu", value.nbytes())
        if isinstance(value, torch.storage.TypedStorage):
            storage = value._untyped_storage
            key = keys.setdefault(storage._cdata, str(len(keys)))
            records[key] = storage
            return ("storage", getattr(torch, value._pickle_storage_type()), key, "cpu", value._size())
        return None

    class Pickler(pickle.Pickler):
        def persistent_id(self, value):
            return persistent_id(value)

    buffer = io.BytesIO()
    Pickler(buffer, protocol=torch.serialization.DEFAULT_PROTOCOL).dump(obj)
    lazy = [record for record in records.values() if isinstance(record, _LazyStorage)]
    if not lazy:  # everything is in memory already: torch's own writer
        torch.save(obj, path)
        return
    with ZipWriter(path) as writer:
        writer.write_record("data.pkl", buffer.getbuffer())
        writer.write_record(".format_version", b"1")
        writer.write_record(".storage_alignment", str(torch.serialization._get_storage_alignment()).encode())
        writer.write_record("byteorder", sys.byteorder.encode())
        bar = _bar(lazy, progress)
        for key, record in records.items():
            if isinstance(record, _LazyStorage):
                tensor = record.load()
                if tensor.dtype != record.dtype or tensor.numel() != record.numel:
                    raise ValueError(f"tensor {record.name!r} changed while it was written")
                data = _tensor_bytes(tensor)
                if bar is not None:
                    bar.update(data.nbytes)
            else:
                data = _storage_bytes(record if record.device.type == "cpu" else record.cpu())
            writer.write_record(f"data/{key}", data)
            del data
        # what torch's writer ends with: the record format version, then an archive id
        writer.write_record("version", b"3\n")
        writer.write_record(".data/serialization_id", str(uuid.uuid4().int).zfill(40)[:40].encode())
        if bar is not None:
            bar.close()


def _tensor_bytes(tensor: torch.Tensor) -> memoryview:
    """The bytes of ``tensor`` in row-major order, without a copy when it is already a
    contiguous CPU tensor (a view into a memory-mapped file stays one)."""
    tensor = tensor.detach().cpu().contiguous()
    if tensor.numel() == 0:
        return memoryview(b"")
    return memoryview(tensor.reshape(-1).view(torch.uint8).numpy()).cast("B")


def _storage_bytes(storage) -> memoryview:
    """The bytes of a CPU untyped storage, without a copy."""
    if storage.nbytes() == 0:
        return memoryview(b"")
    return memoryview(torch.empty(0, dtype=torch.uint8).set_(storage).numpy()).cast("B")


def _bar(lazy: List[_LazyStorage], description: Optional[str]):
    from ._io import PROGRESS_BYTES

    total = sum(record.numel * torch.empty((), dtype=record.dtype).element_size() for record in lazy)
    if not description or total < PROGRESS_BYTES:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=description, disable=None, leave=False)
