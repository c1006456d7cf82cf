"""Every way a step value reaches Python, and where the device sees each one.

A value leaves a tensor for Python in one of two ways.

Through the dispatcher. Every conversion to a Python number ends in the aten operation
``_local_scalar_dense``: ``.item()``, ``float()``, ``int()``, ``complex()``, ``bool()`` and
so ``if t:`` / ``while`` / ``and`` / ``or`` / a comparison used in control flow,
``__index__`` (a tensor as an index, in ``range()``, as a size), formatting a 0-d
tensor, numpy scalars (``np.float64(t)``), ``math`` functions, ``sorted``/``max`` of
tensors, and any tensor that torch's C++ takes where it expects a number
(``torch.full(size, t)``, ``torch.zeros(n)``). ``torch.equal`` and ``is_nonzero`` are
operations too, and so are the operations whose output shape depends on values
(``nonzero``, ``x[mask]``: ``len()`` of their result and iterating over it only read
that shape) and copies to the host from another device. The device's dispatch mode
sees them all at the one place they pass: ``host_read_of_op``.

Around the dispatcher, by reading host memory in C++. ``.tolist()``, ``.numpy()``,
``__array__`` (``np.asarray``), ``__dlpack__`` and printing read the memory of a CPU
tensor directly (on an accelerator they would first dispatch a copy to the host, seen
above), and the tensor constructors given a sequence that holds tensors
(``torch.tensor([t1, t2])``, ``torch.as_tensor([t])``, ``torch.asarray``,
``Tensor.new_tensor``) convert each element to a number with the dispatcher's Python
key switched off, as the legacy constructors (``torch.Tensor([t])``) do when they call
``float(t)``. These few functions are seen where Python calls them
(``host_read_of_function``, by the device's torch-function mode) and reported through
the same handler. ``.cpu()`` is one of them: on the simulated device (the CPU) it is the
copy to the host that an accelerator would make.

Not seen: ``torch.utils.dlpack.to_dlpack(t)``, a C function without a torch-function
hook, hands the memory to another library, whose later read happens outside torch
(``numpy.from_dlpack(t)`` goes through ``__dlpack__`` and is seen); reads of the storage
(``t.untyped_storage().tolist()``, ``torch.save`` of a step tensor); and the memory
readers of the second kind when a torch function written in Python calls them (a
torch-function mode is off while the function it handles runs). A conversion to a number
is seen wherever Python code makes it; one made inside an aten operation's own kernel is
seen as that operation (those that return a Python value, such as ``allclose``, or a
shape that depends on values are listed above).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

aten = torch.ops.aten

_VALUE_READ_HINT = (
    "A compiled step cannot stop to hand a value to Python: keep it a tensor (torch.where "
    "instead of `if`, torch.stack instead of torch.tensor([...]), a tensor hyperparameter "
    "instead of a number), or read it after the step (return it from the step function, or "
    "use a step closure)."
)
_DATA_DEPENDENT_HINT = (
    "Its output shape depends on tensor values, which a compiled graph cannot have: use a "
    "fixed-shape form (torch.where(mask, x, 0), a multiplication by the mask, "
    "torch.nonzero_static(size=...), masked reductions)."
)

# -- through the dispatcher -----------------------------------------------------------------

# aten operations that hand a tensor's value to Python.
_VALUE_READS = {
    aten._local_scalar_dense.default: "converting it to a Python number (.item(), float(), int(), bool() "
    "-- so `if`, `while`, `and`, `or` on a tensor --, a tensor as an index or a size, or where torch "
    "expects a number)",
    aten.equal.default: "torch.equal(), which returns a Python bool",
    aten.allclose.default: "torch.allclose(), which returns a Python bool",
    aten._nested_tensor_from_mask_left_aligned.default: "a check of a padding mask that returns a Python "
    "bool (nn.TransformerEncoder's fast path)",
    aten.is_nonzero.default: "a tensor's truth value (bool(tensor), `if tensor:`)",
}
#: The operations that hand a value to Python (their result decides a Python branch).
VALUE_READ_OPS = frozenset(_VALUE_READS)
# aten operations whose output shape depends on the values of their input.
_DATA_DEPENDENT = {
    aten.nonzero.default: "torch.nonzero() / torch.where(condition) / argwhere()",
    aten.masked_select.default: "torch.masked_select()",
    aten._unique.default: "torch.unique()",
    aten._unique2.default: "torch.unique()",
    aten.unique_dim.default: "torch.unique(dim=...)",
    aten.unique_consecutive.default: "torch.unique_consecutive()",
    aten.bincount.default: "torch.bincount()",
}
_REPEAT_INTERLEAVE = {aten.repeat_interleave.Tensor, aten.repeat_interleave.self_Tensor}
_MAYBE_HOST = {aten.index.Tensor, aten._to_copy.default, aten.copy_.default} | _REPEAT_INTERLEAVE

#: Every aten operation that may read the host; the fast path is one membership test.
WATCHED_OPS = frozenset(_VALUE_READS) | frozenset(_DATA_DEPENDENT) | frozenset(_MAYBE_HOST)


def _is_mask(index) -> bool:
    return isinstance(index, torch.Tensor) and index.dtype in (torch.bool, torch.uint8)


def host_read_of_op(func, args: tuple, kwargs: dict) -> Optional[Tuple[str, str]]:
    """``(what, hint)`` if the aten operation reads the host, else None.

    Only called for ``func in WATCHED_OPS``.
    """
    if func in _VALUE_READS:
        return _VALUE_READS[func], _VALUE_READ_HINT
    if func in _DATA_DEPENDENT:
        return f"a data-dependent shape: {_DATA_DEPENDENT[func]}", _DATA_DEPENDENT_HINT
    if func is aten.index.Tensor:
        if any(_is_mask(index) for index in args[1]):
            return "a data-dependent shape: boolean-mask indexing x[mask]", _DATA_DEPENDENT_HINT
        return None
    if func in _REPEAT_INTERLEAVE:
        if kwargs.get("output_size") is None:
            return "a data-dependent shape: repeat_interleave() with tensor repeats and no output_size", _DATA_DEPENDENT_HINT
        return None
    if func is aten._to_copy.default:
        source, target = args[0], kwargs.get("device")
        if target is not None and torch.device(target).type == "cpu" and source.device.type != "cpu":
            return f"a copy of a step value from {source.device} to the host (.cpu(), .to('cpu'))", _VALUE_READ_HINT
        return None
    if func is aten.copy_.default:
        target, source = args[0], args[1]
        if target.device.type == "cpu" and isinstance(source, torch.Tensor) and source.device.type != "cpu":
            return f"a copy of a step value from {source.device} into a host tensor", _VALUE_READ_HINT
        return None
    return None


# -- around the dispatcher ------------------------------------------------------------------

# Tensor methods whose C++ reads a CPU tensor's memory without an aten operation.
_MEMORY_READS = {
    torch.Tensor.tolist: ".tolist()",
    torch.Tensor.numpy: ".numpy()",
    torch.Tensor.__array__: "numpy.asarray(tensor) / numpy.array(tensor)",
    torch.Tensor.__dlpack__: "a DLPack export (__dlpack__, torch.utils.dlpack.to_dlpack)",
    torch.Tensor.__repr__: "printing a tensor (print(), str(), repr())",
    torch.Tensor.__format__: "formatting a tensor (an f-string, str.format())",
    torch.Tensor.cpu: ".cpu()",
}
# Constructors that read each tensor of a sequence given as data, as a number.
_CONSTRUCTORS = {
    torch.tensor: "torch.tensor",
    torch.as_tensor: "torch.as_tensor",
    torch.asarray: "torch.asarray",
    torch.Tensor.new_tensor: "Tensor.new_tensor",
}

# Python's number protocol on a tensor. It ends in ``_local_scalar_dense`` and is seen by
# the dispatch mode, except where a legacy constructor (``torch.Tensor([t])``,
# ``torch.FloatTensor([t])``) calls it with the dispatcher's Python key switched off.
_NUMBER_PROTOCOL = frozenset(
    [
        torch.Tensor.__float__,
        torch.Tensor.__int__,
        torch.Tensor.__index__,
        torch.Tensor.__bool__,
        torch.Tensor.__complex__,
    ]
)
_PYTHON_KEY = torch._C.DispatchKey.Python
# A private torch function (present since torch 1.13); without it, number conversions are
# left to the dispatch mode alone.
_is_excluded = getattr(torch._C, "_dispatch_tls_is_dispatch_key_excluded", lambda key: False)

#: Every function that may read the host around the dispatcher.
WATCHED_FUNCTIONS = frozenset(_MEMORY_READS) | frozenset(_CONSTRUCTORS) | _NUMBER_PROTOCOL


def _holds_tensor(data) -> bool:
    if isinstance(data, torch.Tensor):
        return True
    if isinstance(data, (list, tuple)):
        return any(_holds_tensor(item) for item in data)
    return False


def _constructor_data(func, args: tuple, kwargs: dict):
    if func is torch.Tensor.new_tensor:
        return args[1] if len(args) > 1 else kwargs.get("data")
    if args:
        return args[0]
    return kwargs.get("data", kwargs.get("obj"))


def host_read_of_function(func, args: tuple, kwargs: dict) -> Optional[Tuple[str, str]]:
    """``(what, hint)`` if the torch function reads the host, else None.

    Only called for ``func in WATCHED_FUNCTIONS``.
    """
    what = _MEMORY_READS.get(func)
    if what is not None:
        return what, _VALUE_READ_HINT
    if func in _NUMBER_PROTOCOL:
        if _is_excluded(_PYTHON_KEY):
            return (
                "converting it to a Python number in a tensor constructor (torch.Tensor([t]), "
                "torch.FloatTensor([t]); torch.stack(...) builds the same tensor without a host read)",
                _VALUE_READ_HINT,
            )
        return None  # the dispatch mode sees it, at _local_scalar_dense
    data = _constructor_data(func, args, kwargs)
    # A tensor given whole is copied, not read; a sequence holding tensors is read element by element.
    if isinstance(data, (list, tuple)) and _holds_tensor(data):
        return (
            f"{_CONSTRUCTORS[func]}() of a list holding step tensors (each one is read as a Python "
            f"number; torch.stack(...) builds the same tensor without a host read)",
            _VALUE_READ_HINT,
        )
    return None
