"""Cerebras ``.mdl`` files (HDF5, checkpoint format 0.5): a nested tree of tensors and scalars.

cerebras-pytorch 2.10 (``cstorch.save``) flattens the saved object the way
``torch.utils._pytree`` does and writes, in one HDF5 file:

* root attributes ``__spec__`` (JSON ``[readable, treespec]``; the treespec is
  authoritative), ``__version__`` (0.5), ``__cstorch_version__`` and ``__SUCCESS__``
  (written last: a file without it was left half-written);
* one root attribute ``<flat.key>.__metadata__`` per leaf, a JSON document naming the
  leaf's serializer and, for scalars and strings, its value;
* one dataset ``/<flat.key>`` per tensor (or numpy array) leaf, LZ4-compressed (HDF5
  filter 32004 from hdf5plugin) unless 0-d, with the leaf's metadata copied onto its
  attributes; a tensor of one value (``DeferredFullTensor``) is stored as that value.

A flat key is the path's keys joined by ``.``; names contain dots, so the tree is always
rebuilt by walking the treespec, never by splitting keys. A leaf may be a *link* to
another leaf holding the same object (cstorch deduplicates by identity); links are
resolved on reading. Leaves pickled with dill (any other Python object) are refused:
loading them would run code from the file.

h5py and hdf5plugin are imported only here, on first use (the ``wse[cerebras]`` extra).
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
import uuid
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import torch

from .hub import CheckpointError

FORMAT_VERSION = 0.5
CSTORCH_VERSION = "2.10.0"
INSTALL_HINT = 'pip install "wse[cerebras]"'
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

# torch dtype <-> the numbers cerebras' runtime (RtFx) gives them; every other dtype
# (int8, float8, complex, ...) is one cstorch.save itself cannot write.
RTFX_DTYPES: Dict[torch.dtype, int] = {
    torch.bool: 1,
    torch.int16: 3,
    torch.int32: 4,
    torch.int64: 5,
    torch.uint8: 6,
    torch.uint16: 7,
    torch.uint32: 8,
    torch.uint64: 9,
    torch.float16: 10,
    torch.float32: 11,
    torch.float64: 12,
    torch.bfloat16: 15,
}
_DTYPE_BY_RTFX = {code: dtype for dtype, code in RTFX_DTYPES.items()}

#: The serializers of tensor leaves this reader reads: a dataset, or a tensor of one value.
TENSOR_KINDS = ("TorchTensorSerializer", "DeferredFullTensor")

_CONTAINERS = {
    "builtins.dict": dict,
    "collections.OrderedDict": OrderedDict,
    "builtins.list": list,
    "builtins.tuple": tuple,
    "builtins.set": set,
}
_LEAF_SPEC = {"type": None, "context": None, "children_spec": []}


def h5_modules():
    """``(h5py, hdf5plugin)``, or an error saying how to install them.

    hdf5plugin must be imported before any compressed dataset is read: importing it
    registers the LZ4 filter with HDF5.
    """
    try:
        import h5py
        import hdf5plugin
    except ImportError as error:
        raise CheckpointError(
            f"reading and writing Cerebras .mdl checkpoints needs h5py and hdf5plugin "
            f"({error.name} is missing); install them with: {INSTALL_HINT}"
        ) from None
    return h5py, hdf5plugin


def open_file(h5py, path: str, mode: str):
    """``h5py.File`` with HDF5's file locking where the file system supports it (as cstorch opens
    its files): a read-only or network file system must not make a checkpoint unreadable.

    HDF5's chunk cache is off: every tensor is read or written whole, each chunk once, so the
    cache would only add a copy of every chunk on its way (about a tenth of the time)."""
    return h5py.File(path, mode, locking="best-effort", rdcc_nbytes=0)


def has_hdf5_signature(path: str) -> bool:
    """Whether ``path`` is a file that starts as an HDF5 file does (no HDF5 library needed)."""
    try:
        with open(path, "rb") as stream:
            return stream.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE
    except OSError:
        return False


# -- the tree spec -----------------------------------------------------------------------


class _Node:
    """One node of a treespec: a container type with its keys, or a leaf (``kind is None``)."""

    __slots__ = ("kind", "keys", "children")

    def __init__(self, kind: Optional[str], keys: List[Any], children: List["_Node"]):
        self.kind = kind
        self.keys = keys
        self.children = children


def _parse_treespec(text: str, where: str) -> _Node:
    try:
        protocol, root = json.loads(text)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{where}: the tree spec is not valid JSON ({error})") from None
    if protocol != 1:
        raise CheckpointError(f"{where}: tree spec protocol {protocol!r} is not supported (only 1)")

    def node(entry) -> _Node:
        kind = entry["type"]
        if kind is None:
            return _Node(None, [], [])
        if kind not in _CONTAINERS:
            raise CheckpointError(
                f"{where}: the saved tree holds a {kind!r} container; only dict, OrderedDict, list, "
                f"tuple and set are supported"
            )
        children = [node(child) for child in entry["children_spec"]]
        if kind in ("builtins.dict", "collections.OrderedDict"):
            keys = json.loads(entry["context"])
        else:
            keys = list(range(len(children)))
        if len(keys) != len(children):
            raise CheckpointError(f"{where}: a {kind} node of the tree spec has {len(keys)} keys "
                                  f"for {len(children)} children")
        return _Node(kind, keys, children)

    try:
        return node(root)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{where}: the tree spec is malformed ({type(error).__name__}: {error})") from None


def _flat_keys(node: _Node, path: Tuple[str, ...] = ()) -> Iterator[str]:
    if node.kind is None:
        yield ".".join(path)
        return
    for key, child in zip(node.keys, node.children):
        yield from _flat_keys(child, path + (str(key),))


def _unflatten(node: _Node, leaves: Iterator[Any]) -> Any:
    if node.kind is None:
        return next(leaves)
    values = [_unflatten(child, leaves) for child in node.children]
    kind = _CONTAINERS[node.kind]
    if kind in (dict, OrderedDict):
        return kind(zip(node.keys, values))
    return kind(values)


# -- reading -------------------------------------------------------------------------------


class Deferred:
    """A tensor leaf not read yet: ``load()`` reads it; ``dtype`` and ``shape`` come from the metadata."""

    __slots__ = ("reader", "key", "dtype", "shape")

    def __init__(self, reader: "MdlReader", key: str, dtype: torch.dtype, shape: Tuple[int, ...]):
        self.reader = reader
        self.key = key
        self.dtype = dtype
        self.shape = shape

    def load(self) -> torch.Tensor:
        return self.reader.tensor(self.key)

    def __repr__(self) -> str:
        return f"Deferred({self.key!r}, {self.dtype}, {list(self.shape)})"


class MdlReader:
    """An open ``.mdl`` file: its tree spec, and each leaf read on demand.

    The HDF5 file stays open while the reader lives, so tensors can be read lazily one
    at a time (a large checkpoint is never held twice); ``close()`` releases it early.
    """

    def __init__(self, path: str):
        h5py, _ = h5_modules()
        self.path = path
        try:
            self._file = open_file(h5py, path, "r")
        except OSError as error:
            raise CheckpointError(
                f"{path}: cannot open as an HDF5 file ({error}); the file is truncated, corrupt or not "
                f"a Cerebras .mdl checkpoint"
            ) from None
        attrs = self._file.attrs
        version = attrs.get("__version__")
        if version is None or "__spec__" not in attrs:
            self.close()
            raise CheckpointError(
                f"{path}: an HDF5 file without the root attributes __version__ and __spec__ is not a "
                f"Cerebras .mdl checkpoint (cstorch.save writes both)"
            )
        if float(version) < FORMAT_VERSION:
            self.close()
            raise CheckpointError(
                f"{path}: checkpoint format {float(version)} (written by cerebras-pytorch before 2.1) is not "
                f"supported; load it with that release's cstorch.load and save it again with cerebras-pytorch "
                f">= 2.1, which writes format {FORMAT_VERSION}"
            )
        if not attrs.get("__SUCCESS__", False):
            self.close()
            raise CheckpointError(
                f"{path}: the checkpoint was only partially written (no __SUCCESS__ marker); cstorch.load "
                f"refuses it too. Use an earlier checkpoint."
            )
        self.version = float(version)
        self.cstorch_version = _text(attrs.get("__cstorch_version__"))
        try:
            _, treespec = json.loads(_text(attrs["__spec__"]))
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"{path}: the __spec__ attribute is not valid JSON ({error})") from None
        self.spec = _parse_treespec(treespec, path)
        self.keys: List[str] = list(_flat_keys(self.spec))
        self._metadata: Dict[str, dict] = {}

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "MdlReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def metadata(self, key: str) -> dict:
        """The serializer metadata of leaf ``key`` (``__TYPE__``, ``shapes``, ``scalar_value``, ...)."""
        if key not in self._metadata:
            name = f"{key}.__metadata__"
            if name not in self._file.attrs:
                raise CheckpointError(f"{self.path}: leaf {key!r} has no {name} attribute; the file is corrupt")
            document = json.loads(_text(self._file.attrs[name]))
            objects = document.get("__objects__", [])
            leaf = document.get(f"{key}.__metadata__")
            if objects != [key] or leaf is None:
                raise CheckpointError(
                    f"{self.path}: leaf {key!r} is a nested object ({objects}), as cerebras systems write for "
                    f"tensors kept on the device; only checkpoints with their tensors in the file are supported"
                )
            self._metadata[key] = leaf
        return self._metadata[key]

    def kind(self, key: str) -> str:
        return self.metadata(key)["__TYPE__"]

    def link_target(self, key: str) -> Optional[str]:
        """The key whose value leaf ``key`` shares, or None when it is not a link."""
        meta = self.metadata(key)
        return meta["key"] if meta.get("__LINKED__") else None

    def tensor_info(self, key: str) -> Tuple[torch.dtype, Tuple[int, ...]]:
        meta = self.metadata(key)
        if meta["__TYPE__"] == "DeferredFullTensor":
            return _torch_dtype(meta.get("dtype"), self.path, key), tuple(meta["shape"])
        dtypes = meta.get("dtypes")
        if dtypes:
            dtype = getattr(torch, dtypes[0].split(".", 1)[1], None)
        else:
            dtype = _DTYPE_BY_RTFX.get(meta.get("rtfx_dtypes", [None])[0])
        if not isinstance(dtype, torch.dtype):
            raise CheckpointError(f"{self.path}: tensor {key!r} has an unknown dtype ({dtypes or meta.get('rtfx_dtypes')})")
        return dtype, tuple(meta["shapes"][0])

    def tensor(self, key: str) -> torch.Tensor:
        """Read tensor leaf ``key`` (a fresh CPU tensor)."""
        target = self.link_target(key)
        if target is not None:
            return self.tensor(target)
        dtype, shape = self.tensor_info(key)
        meta = self.metadata(key)
        if meta["__TYPE__"] == "DeferredFullTensor":
            # a tensor of one value, stored as that value (cstorch's lazily initialised
            # tensors); no value means uninitialised memory, for which zeros stand
            value = meta.get("fill_value")
            return torch.full(shape, 0 if value is None else value, dtype=dtype)
        import numpy

        array = self._array(key)
        if tuple(array.shape) != shape:
            raise CheckpointError(
                f"{self.path}: tensor {key!r} has shape {tuple(array.shape)} in the file but {list(shape)} in "
                f"its metadata; the file is corrupt"
            )
        if dtype == torch.bool:
            array = array.astype(bool, copy=False)
        if not (array.flags.writeable and array.flags.c_contiguous):
            array = array.copy()
        if dtype == torch.bfloat16:
            # bfloat16 is stored as the int16 of its bits
            return torch.from_numpy(array.view(numpy.int16)).view(torch.bfloat16)
        return torch.from_numpy(array)

    def _array(self, key: str):
        """The dataset of leaf ``key`` as a numpy array."""
        import numpy

        try:
            return numpy.asarray(self._file[key][()])
        except KeyError:
            raise CheckpointError(f"{self.path}: leaf {key!r} has no dataset; the file is corrupt") from None
        except OSError as error:
            raise CheckpointError(
                f"{self.path}: cannot read {key!r} ({error}); the file is truncated or corrupt"
            ) from None

    def value(self, key: str, defer_tensors: bool = False) -> Any:
        """The value of leaf ``key``; tensors are ``Deferred`` when ``defer_tensors``."""
        meta = self.metadata(key)
        kind = meta["__TYPE__"]
        if kind == "LinkedObject":
            return self.value(meta["key"], defer_tensors)
        if kind in TENSOR_KINDS:
            if defer_tensors:
                return Deferred(self, key, *self.tensor_info(key))
            return self.tensor(key)
        if kind == "NumpyArraySerializer":
            return self._array(key)
        if kind == "ScalarSerializer":
            return meta["scalar_value"]
        if kind == "StringSerializer":
            return meta["string_value"]
        if kind == "NoneSerializer":
            return None
        if kind == "ObjectSerializer":
            raise CheckpointError(
                f"{self.path}: leaf {key!r} is a pickled Python object (dill); loading it would run code "
                f"from the file, so it is refused. Save that entry as tensors, numbers or strings instead."
            )
        raise CheckpointError(
            f"{self.path}: leaf {key!r} was written by serializer {kind!r}, which is not supported here "
            f"(supported: tensors, scalars, strings, None, links)"
        )

    def tree(self, defer: Callable[[str], bool] = lambda key: False,
             unreadable: Optional[Callable[[str, CheckpointError], Any]] = None) -> Any:
        """The whole saved object, links resolved; tensor leaves whose key ``defer`` accepts stay ``Deferred``.

        A link to a tensor gives the very object of its target, as ``cstorch.load``
        re-ties them (a scheduler's ``_last_value`` and the group ``lr`` stay one tensor).
        A leaf that cannot be read raises, unless ``unreadable(key, error)`` gives what
        stands in its place (or raises itself).
        """
        resolved: Dict[str, Any] = {}

        def read(key: str) -> Any:
            try:
                return self.value(key, defer(key))
            except CheckpointError as error:
                if unreadable is None:
                    raise
                return unreadable(key, error)

        def leaf(key: str) -> Any:
            target = self.link_target(key) or key
            if target not in resolved:
                resolved[target] = read(target)
            return resolved[target]

        return _unflatten(self.spec, iter([leaf(key) for key in self.keys]))

    def subtree_keys(self, top: str) -> List[Tuple[Tuple[Any, ...], str]]:
        """``(path below top, flat key)`` for every leaf under the top-level entry ``top``."""
        found = []

        def walk(node: _Node, path: Tuple[Any, ...], flat: Tuple[str, ...]):
            if node.kind is None:
                found.append((path, ".".join(flat)))
                return
            for key, child in zip(node.keys, node.children):
                walk(child, path + (key,), flat + (str(key),))

        for key, child in zip(self.spec.keys, self.spec.children):
            if key == top:
                walk(child, (), (str(key),))
        return found


def _torch_dtype(name: Any, path: str, key: str) -> torch.dtype:
    dtype = getattr(torch, str(name).split(".", 1)[-1], None)
    if not isinstance(dtype, torch.dtype):
        raise CheckpointError(f"{path}: tensor {key!r} has an unknown dtype {name!r}")
    return dtype


def _text(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


# -- writing -------------------------------------------------------------------------------


class _Leaf:
    """A leaf to write: a value, or a function producing the tensor when its turn comes."""

    __slots__ = ("key", "value", "produce")

    def __init__(self, key: str, value: Any = None, produce: Optional[Callable[[], torch.Tensor]] = None):
        self.key = key
        self.value = value
        self.produce = produce


def _flatten(tree: Any) -> Tuple[dict, List[_Leaf], Any]:
    """``(treespec, leaves, readable)`` of ``tree`` as torch's pytree and cstorch flatten it.

    A ``Mapping`` that is not a dict (a lazy state dict) is written as an OrderedDict whose
    values are produced one at a time while writing.
    """
    leaves: List[_Leaf] = []
    readable_ok = [True]

    def walk(value: Any, path: Tuple[str, ...]):
        where = ".".join(path) or "the saved object"
        if isinstance(value, (dict, Mapping)) and not isinstance(value, torch.Tensor):
            lazy = not isinstance(value, dict)
            kind = "collections.OrderedDict" if lazy or isinstance(value, OrderedDict) else "builtins.dict"
            if type(value) not in (dict, OrderedDict) and not lazy:
                raise CheckpointError(f"cannot write {where}: a {type(value).__name__} is not a plain dict")
            keys = list(value.keys())
            for key in keys:
                if isinstance(key, bool) or not isinstance(key, (str, int)):
                    raise CheckpointError(
                        f"cannot write {where}: key {key!r} is a {type(key).__name__}; a .mdl file keys its "
                        f"dicts by str or int"
                    )
            children, readable = [], {}
            for key in keys:
                if lazy:
                    leaves.append(_Leaf(".".join(path + (str(key),)), produce=lambda m=value, k=key: m[k]))
                    spec, sub = dict(_LEAF_SPEC), "*"
                else:
                    spec, sub = walk(value[key], path + (str(key),))
                children.append(spec)
                readable[key] = sub
            return {"type": kind, "context": json.dumps(keys), "children_spec": children}, readable
        if type(value) in (list, tuple, set):
            kind = {list: "builtins.list", tuple: "builtins.tuple", set: "builtins.set"}[type(value)]
            if isinstance(value, set):
                readable_ok[0] = False
            children, readable = [], []
            for index, item in enumerate(value):
                spec, sub = walk(item, path + (str(index),))
                children.append(spec)
                readable.append(sub)
            return {"type": kind, "context": "null", "children_spec": children}, readable
        if isinstance(value, (list, tuple, set)):
            raise CheckpointError(
                f"cannot write {where}: a {type(value).__name__} (a subclass of a list/tuple/set) has no "
                f".mdl layout; convert it to a plain {type(value).__mro__[1].__name__}"
            )
        leaves.append(_Leaf(".".join(path), value=value))
        return dict(_LEAF_SPEC), "*"

    spec, readable = walk(tree, ())
    return spec, leaves, (readable if readable_ok[0] else None)


def _leaf_document(key: str, metadata: dict) -> str:
    """The JSON of ``<key>.__metadata__``: the leaf's own one-entry tree and its serializer metadata."""
    treespec = json.dumps([1, {"type": "builtins.dict", "context": json.dumps([key]),
                               "children_spec": [dict(_LEAF_SPEC)]}])
    document = {
        "__spec__": [{key: "*"}, treespec],
        "__objects__": [key],
        f"{key}.__metadata__": metadata,
    }
    return json.dumps(document, indent=4)


def _tensor_metadata(key: str, tensor: torch.Tensor, path: str) -> dict:
    if tensor.dtype not in RTFX_DTYPES:
        raise CheckpointError(
            f"cannot write {path}: tensor {key!r} is {tensor.dtype}, which has no Cerebras storage type "
            f"(cstorch.save refuses it too); cast it to one of "
            f"{', '.join(str(d).split('.')[1] for d in RTFX_DTYPES)} first"
        )
    return {
        "__TORCH__": True,
        "shapes": [tuple(tensor.shape)],
        "dtypes": [str(tensor.dtype)],
        "rtfx_dtypes": [RTFX_DTYPES[tensor.dtype]],
        "__TYPE__": "TorchTensorSerializer",
        "__NUMPY__": True,
        "compressed": False,
    }


def _scalar_metadata(key: str, value: Any, path: str) -> dict:
    if value is None:
        return {"__TYPE__": "NoneSerializer", "__NONE__": True}
    if isinstance(value, (bool, int, float)) and type(value) in (bool, int, float):
        return {"scalar_value": value, "__TYPE__": "ScalarSerializer", "__NONE__": True}
    if type(value) is str:
        return {"string_value": value, "__TYPE__": "StringSerializer", "__NONE__": True}
    raise CheckpointError(
        f"cannot write {path}: {key!r} is a {type(value).__name__}, neither a tensor, a number, a string nor None; "
        f"cstorch.save would pickle it with dill, which a reader must not load from an untrusted file. "
        f"Store it as one of those types."
    )


def _is_numpy_array(value: Any) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ == "ndarray" and value.dtype.kind in "biuf"


def _as_array(tensor: torch.Tensor):
    tensor = tensor.detach().to("cpu").contiguous()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy()
    return tensor.numpy()


@contextlib.contextmanager
def _without_gc() -> Iterator[None]:
    """Python's cyclic garbage collector paused: writing a leaf makes many small objects (its
    metadata, h5py handles), which set off collections that walk every object of the process
    (torch's included), a tenth of the time of writing a GiB. The leaves make no cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def temporary_path(path: str) -> str:
    """Where a checkpoint for ``path`` is written before it is renamed into place (cstorch's pattern)."""
    return f"{path}.{uuid.uuid4().hex[:8]}.tmp"


def write_tree(tree: Any, path: str, progress: Optional[Callable[[str], None]] = None) -> None:
    """Write ``tree`` to ``path`` as ``cstorch.save(tree, path)`` does, tensors one at a time.

    The file is written to a temporary name beside ``path`` and renamed when complete; on
    any error the temporary file is removed and ``path`` is untouched. Tensors that are one
    object (``is``) are written once, the later occurrences as links, as cstorch does.
    ``progress(key)`` is called after each leaf.
    """
    h5py, hdf5plugin = h5_modules()
    spec, leaves, readable = _flatten(tree)
    seen_keys = set()
    for leaf in leaves:
        if leaf.key in seen_keys:
            raise CheckpointError(
                f"cannot write {path}: two entries flatten to the same key {leaf.key!r} (keys are joined with "
                f"'.'); rename one of them"
            )
        seen_keys.add(leaf.key)

    head = {
        "__spec__": json.dumps([readable, json.dumps([1, spec])], indent=4),
        "__version__": FORMAT_VERSION,
        "__cstorch_version__": CSTORCH_VERSION,
    }
    temporary = temporary_path(path)
    compression = dict(hdf5plugin.LZ4())
    documents: Dict[str, str] = {}
    first_holder: Dict[int, Tuple[str, torch.Tensor]] = {}
    try:
        with open_file(h5py, temporary, "w-") as out, _without_gc():
            out.attrs.update(head)
            for leaf in leaves:
                value = leaf.produce() if leaf.produce is not None else leaf.value
                if isinstance(value, torch.Tensor):
                    holder = first_holder.get(id(value))
                    if holder is not None and holder[1] is value:
                        metadata = {"key": holder[0], "__LINKED__": True, "__TYPE__": "LinkedObject",
                                    "__NONE__": True}
                        documents[leaf.key] = _leaf_document(leaf.key, metadata)
                    else:
                        if leaf.produce is None:
                            first_holder[id(value)] = (leaf.key, value)
                        metadata = _tensor_metadata(leaf.key, value, path)
                        array = _as_array(value)
                        dataset = out.create_dataset(leaf.key, array.shape, array.dtype,
                                                     **(compression if array.ndim else {}))
                        dataset[...] = array
                        dataset.attrs.update(metadata)
                        documents[leaf.key] = _leaf_document(leaf.key, metadata)
                        del array
                elif _is_numpy_array(value):
                    # as cstorch writes a numpy array (a data loader's state, say)
                    metadata = {"is_bfloat16": False, "__TYPE__": "NumpyArraySerializer", "__NUMPY__": True,
                                "compressed": False}
                    dataset = out.create_dataset(leaf.key, value.shape, value.dtype,
                                                 **(compression if value.ndim else {}))
                    dataset[...] = value
                    dataset.attrs.update(metadata)
                    documents[leaf.key] = _leaf_document(leaf.key, metadata)
                else:
                    documents[leaf.key] = _leaf_document(leaf.key, _scalar_metadata(leaf.key, value, path))
                del value
                if progress is not None:
                    progress(leaf.key)
            out.attrs.update(head)
            out.attrs.update({f"{key}.__metadata__": text for key, text in documents.items()})
            out.attrs["__SUCCESS__"] = True
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
