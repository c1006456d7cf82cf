"""Safe checkpoint IO: atomic writes, pickle-free loading, streamed safetensors, progress."""
from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import pickle
import shutil
import struct
import sys
import tempfile
import zipfile
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Tuple

import torch

from ._zipwrite import open_for_writing, write_all
from .hub import CheckpointError, LazyStateDict, tensor_info

log = logging.getLogger(__name__)

#: Above this many bytes a conversion shows a progress bar (on a terminal).
PROGRESS_BYTES = 256 * 2**20

UNSAFE_HINT = (
    "it needs unpickling, which can run arbitrary code from the file; "
    "if you trust it, pass unsafe=True (--unsafe-load on the command line)"
)


# -- atomic writes -------------------------------------------------------------------------

def refuse_existing(path: str, overwrite: bool) -> None:
    """An existing destination is an error unless ``overwrite``: conversions never clobber."""
    if os.path.lexists(path) and not overwrite:
        raise CheckpointError(f"{path} already exists; remove it or pass overwrite=True (--overwrite)")


@contextlib.contextmanager
def atomic_file(path: str, overwrite: bool = False) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on any
    error it is removed, so a failed write leaves nothing behind."""
    refuse_existing(path, overwrite)
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise CheckpointError(f"cannot write {path}: folder {folder} does not exist")
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    os.close(descriptor)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


@contextlib.contextmanager
def atomic_directory(path: str, overwrite: bool = False) -> Iterator[str]:
    """Yield a temporary directory beside ``path``, renamed to ``path`` when complete."""
    refuse_existing(path, overwrite)
    parent = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(parent):
        raise CheckpointError(f"cannot write {path}: folder {parent} does not exist")
    temporary = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        yield temporary
        os.chmod(temporary, 0o777 & ~_umask())
        if os.path.lexists(path):  # overwrite=True: move the old one aside, then drop it
            aside = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(path)}.", suffix=".old")
            os.replace(path, os.path.join(aside, "old"))
            os.replace(temporary, path)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            shutil.rmtree(temporary, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def torch_save(obj: Any, path: str) -> None:
    """``torch.save`` to a path that is already temporary (inside an atomic write)."""
    torch.save(obj, path)


def write_json(obj: Any, path: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(obj, handle, indent=2, sort_keys=False)
        handle.write("\n")


def read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: not valid JSON ({error})") from None


# -- pickle-free loading -------------------------------------------------------------------

def _numpy_globals() -> list:
    """The numpy names an RNG-state pickle needs: arrays and dtypes, nothing that runs code."""
    try:
        import numpy
    except ImportError:  # pragma: no cover - numpy comes with torch in practice
        return []
    names = [numpy.ndarray, numpy.dtype]
    core = getattr(numpy, "_core", None) or numpy.core
    names.append(core.multiarray._reconstruct)
    names.extend(type(numpy.dtype(code)) for code in ("uint32", "int64", "float64", "uint8", "bool", "int32"))
    return names


def torch_load(path: str, *, unsafe: bool = False, rng: bool = True, mmap: bool = False) -> Any:
    """Load a ``torch.save`` file without running pickled code (``weights_only=True``).

    ``rng`` (default) allow-lists numpy arrays and dtypes, which RNG states hold (HF
    ``rng_state.pth``, Accelerate ``random_states_*.pkl``); they construct data, not code
    (an object array's items still pass the same restricted unpickler).
    ``unsafe=True`` unpickles anything: only for files the user trusts.
    """
    try:
        if unsafe:
            log.warning("unpickling %s with unsafe=True: this runs any code the file holds", path)
            return torch.load(path, map_location="cpu", weights_only=False)
        if rng:
            with torch.serialization.safe_globals(_numpy_globals()):
                return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()
        detail = next((line for line in first if "GLOBAL" in line or "Unsupported" in line), first[0] if first else "")
        raise CheckpointError(f"{path}: refused to load: {detail.strip()}; {UNSAFE_HINT}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable torch.save file (truncated or corrupt?): {error}") from None


def is_torch_zip(path: str) -> bool:
    """Whether ``path`` is a torch.save zip archive (the format since torch 1.6)."""
    try:
        return os.path.isfile(path) and zipfile.is_zipfile(path)
    except OSError:
        return False


# -- safetensors ---------------------------------------------------------------------------

_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "F8_E4M3": getattr(torch, "float8_e4m3fn", None), "F8_E5M2": getattr(torch, "float8_e5m2", None),
}
_DTYPE_CODES = {dtype: code for code, dtype in _SAFETENSORS_DTYPES.items() if dtype is not None}


def safetensors_header(path: str) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """``({name: {"dtype", "shape", "data_offsets"}}, metadata)`` of a safetensors file."""
    try:
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise CheckpointError(f"{path}: not a safetensors file (shorter than its header length)")
            (length,) = struct.unpack("<Q", prefix)
            if length > 100 * 2**20:
                raise CheckpointError(f"{path}: not a safetensors file (header length {length} is implausible)")
            raw = handle.read(length)
            size = os.fstat(handle.fileno()).st_size
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read: {error}") from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: not a safetensors file (its header is not JSON)") from None
    metadata = header.pop("__metadata__", None) or {}
    end = max((entry["data_offsets"][1] for entry in header.values()), default=0)
    if 8 + length + end > size:
        raise CheckpointError(f"{path}: truncated: the header promises {end} bytes of data, the file has {size - 8 - length}")
    return header, metadata


def is_safetensors(path: str) -> bool:
    if not os.path.isfile(path):
        return False
    try:
        safetensors_header(path)
    except (CheckpointError, KeyError, TypeError, IndexError):
        return False
    return True


def read_safetensors(path: str) -> Tuple[LazyStateDict, Dict[str, str]]:
    """A lazy ``{name: tensor}`` view of a safetensors file (each tensor read on access).

    Each tensor is a copy-on-write memory map of its own bytes in the file (as
    ``safetensors.safe_open`` gives, but mapping only that tensor's pages, and prefetching
    them in one call), so reading copies nothing and a streaming writer holds one tensor's
    pages at a time. Like ``safe_open``'s tensors, it reads the file as it is when touched:
    replacing the file (a rename) is safe, truncating it in place is not.
    """
    header, metadata = safetensors_header(path)
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
    start_of_data = 8 + length

    info = {}
    for name, entry in header.items():
        dtype = _SAFETENSORS_DTYPES.get(entry["dtype"])
        if dtype is None:
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {entry['dtype']}, which torch here cannot hold")
        begin, end = entry["data_offsets"]
        if end - begin != _element_size(dtype) * _numel(entry["shape"]):
            raise CheckpointError(f"{path}: tensor {name!r} has {end - begin} bytes for shape {entry['shape']} of "
                                  f"{entry['dtype']}; the file is corrupt")
        info[name] = (dtype, tuple(entry["shape"]))

    def loader(name: str) -> Callable[[], torch.Tensor]:
        dtype, shape = info[name]
        begin, end = header[name]["data_offsets"]
        return lambda: _mapped_tensor(path, start_of_data + begin, start_of_data + end, dtype, shape)

    return LazyStateDict({name: loader(name) for name in header}, info), metadata


#: ``madvise`` advice that faults a mapping's pages in with one call (Linux 5.14+).
_MADV_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22 if sys.platform.startswith("linux") else None)


def _mapped_tensor(path: str, begin: int, end: int, dtype: torch.dtype, shape: Tuple[int, ...]) -> torch.Tensor:
    """The tensor stored at bytes ``[begin, end)`` of ``path``, memory-mapped copy-on-write."""
    if end == begin:
        return torch.empty(shape, dtype=dtype)
    first_page = begin - begin % mmap.ALLOCATIONGRANULARITY
    try:
        with open(path, "rb") as handle:
            mapped = mmap.mmap(handle.fileno(), end - first_page, offset=first_page, access=mmap.ACCESS_COPY)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: cannot read bytes {begin}-{end}: {error}") from None
    if _MADV_POPULATE_READ is not None:
        try:  # one call instead of a page fault every few pages
            mapped.madvise(_MADV_POPULATE_READ)
        except OSError:  # an older kernel: the pages fault in as they are read
            pass
    flat = torch.frombuffer(mapped, dtype=torch.uint8, count=end - begin, offset=begin - first_page)
    return flat.view(dtype).reshape(shape)


def write_safetensors(tensors: Mapping[str, torch.Tensor], path: str, metadata: Optional[Dict[str, str]] = None,
                      progress: Optional[str] = None) -> None:
    """Write a safetensors file one tensor at a time (at most one tensor in memory when
    ``tensors`` is lazy). Keys are written sorted, as ``safetensors.torch.save_file`` does."""
    names = sorted(tensors)
    entries: Dict[str, Any] = {}
    offset = 0
    for name in names:
        dtype, shape = tensor_info(tensors, name)
        if dtype not in _DTYPE_CODES:
            raise CheckpointError(f"tensor {name!r} has dtype {dtype}, which safetensors cannot store")
        size = _element_size(dtype) * _numel(shape)
        entries[name] = {"dtype": _DTYPE_CODES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    header: Dict[str, Any] = {}
    if metadata is not None:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    header.update(entries)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    descriptor = open_for_writing(path)
    try:
        write_all(descriptor, memoryview(struct.pack("<Q", len(raw)) + raw))
        for name in with_progress(names, tensors, progress):
            tensor = tensors[name]
            dtype, shape = entries[name]["dtype"], entries[name]["shape"]
            if _DTYPE_CODES.get(tensor.dtype) != dtype or list(tensor.shape) != shape:
                raise CheckpointError(f"tensor {name!r} changed while it was written")
            write_all(descriptor, _tensor_bytes(tensor))
            del tensor
    finally:
        os.close(descriptor)


def _element_size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _numel(shape) -> int:
    count = 1
    for size in shape:
        count *= int(size)
    return count


def _tensor_bytes(tensor: torch.Tensor) -> memoryview:
    tensor = tensor.detach().to("cpu").contiguous()
    if tensor.numel() == 0:
        return memoryview(b"")
    return memoryview(tensor.reshape(-1).view(torch.uint8).numpy()).cast("B")


# -- progress ------------------------------------------------------------------------------

def total_bytes(tensors: Mapping[str, torch.Tensor]) -> int:
    total = 0
    for name in tensors:
        dtype, shape = tensor_info(tensors, name)
        total += _element_size(dtype) * _numel(shape)
    return total


def with_progress(names, tensors: Mapping[str, torch.Tensor], description: Optional[str]):
    """Iterate ``names``, with a tqdm bar (in bytes) when the tensors are large and
    ``description`` is given; tqdm hides itself when stderr is not a terminal."""
    if not description:
        yield from names
        return
    size = total_bytes(tensors)
    if size < PROGRESS_BYTES:
        yield from names
        return
    from tqdm.auto import tqdm

    with tqdm(total=size, unit="B", unit_scale=True, desc=description, disable=None, leave=False) as bar:
        for name in names:
            yield name
            dtype, shape = tensor_info(tensors, name)
            bar.update(_element_size(dtype) * _numel(shape))
