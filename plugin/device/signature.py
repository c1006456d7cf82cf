"""Compact, comparable signatures of operations and step inputs, and the reads of the host.

An operation of the step is recorded as a tuple ``(op, args, kwargs, outputs)`` where
every tensor becomes ``(TENSOR, shape, dtype, device)``. Structural arguments (ints,
dtypes, devices, strings) are kept by value; Python floats by type only, because eager
code passes step-dependent floats that a compiled step turns into tensors (torch.optim's
bias corrections) -- host-side hyperparameters are checked on the param groups instead.
Tuples compare element by element, so verifying a step costs one tuple comparison per
operation.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
from torch.utils import _pytree as pytree

aten = torch.ops.aten

# Marks the signature of a tensor inside an operation's signature.
TENSOR = "T"
# First element of the events that mark an optimizer step's beginning and end.
OPTIMIZER_STEP = "optimizer.step"
OPTIMIZER_STEP_DONE = "optimizer.step done"

_STRUCTURAL = (int, str, torch.dtype, torch.device, torch.layout, torch.memory_format)


def value_signature(value: Any):
    """The signature of one argument or output of an operation."""
    if isinstance(value, torch.Tensor):
        return (TENSOR, value.shape, value.dtype, value.device)
    if isinstance(value, (list, tuple)):
        return tuple([value_signature(item) for item in value])
    if isinstance(value, float):
        return float
    if value is None or isinstance(value, _STRUCTURAL):
        return value
    return type(value)


def op_event(func, args: tuple, kwargs: dict, out) -> tuple:
    """The signature of one operation: what it is, on what, giving what."""
    signature = value_signature
    return (
        func,
        tuple([signature(arg) for arg in args]),
        tuple([(key, signature(value)) for key, value in kwargs.items()]) if kwargs else (),
        signature(out),
    )


# -- reading the host -----------------------------------------------------------------------

# aten operations that hand a tensor's value to Python.
_VALUE_READS = {
    aten._local_scalar_dense.default: "a tensor read as a Python number (.item(), bool(), float(), "
    "int(), a tensor passed where torch expects a number)",
    aten.equal.default: "torch.equal(), which returns a Python bool",
    aten.is_nonzero.default: "a tensor's truth value (bool(tensor), `if tensor:`)",
}
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

_DATA_DEPENDENT_HINT = (
    "Its output shape depends on tensor values, which a compiled graph cannot have: use a "
    "fixed-shape form (torch.where(mask, x, 0), a multiplication by the mask, "
    "torch.nonzero_static(size=...), masked reductions)."
)
_VALUE_READ_HINT = (
    "A compiled step cannot stop to hand a value to Python: keep it a tensor (torch.where "
    "instead of `if`, a tensor hyperparameter instead of a number), or read it after the step "
    "(return it from the step function, or use a step closure)."
)


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


# Tensor methods that hand a tensor to the host, seen by a TorchFunctionMode. On a CPU-only
# machine `.cpu()` and `.numpy()` never reach an aten operation, so they are caught here.
FUNCTION_READS = {
    torch.Tensor.item: ".item()",
    torch.Tensor.tolist: ".tolist()",
    torch.Tensor.numpy: ".numpy()",
    torch.Tensor.cpu: ".cpu()",
    torch.Tensor.__bool__: "bool(tensor) (`if tensor:`, `and`/`or`/`not` on a tensor)",
    torch.Tensor.__float__: "float(tensor)",
    torch.Tensor.__int__: "int(tensor)",
    torch.Tensor.__index__: "a tensor used as a Python index",
    torch.Tensor.__repr__: "printing a tensor",
    torch.Tensor.__format__: "formatting a tensor (f-string)",
    torch.Tensor.__array__: "numpy.asarray(tensor)",
}
FUNCTION_READ_HINT = _VALUE_READ_HINT


# -- the inputs of a step -------------------------------------------------------------------


def inputs_key(inputs) -> Tuple[Any, tuple]:
    """``(structure, leaf signatures)`` of the step's inputs (any pytree), cheap to compare.

    Tensors are compared by shape, dtype and device; other leaves by type only (a batch
    index that changes every step is not a change of the graph's inputs).
    """
    leaves, spec = pytree.tree_flatten(inputs)
    return spec, tuple(
        [(TENSOR, leaf.shape, leaf.dtype, leaf.device) if isinstance(leaf, torch.Tensor) else type(leaf) for leaf in leaves]
    )


def input_paths(inputs) -> Tuple[str, ...]:
    """The path of each leaf of the inputs, in ``inputs_key`` order (``[0]['ids']``)."""
    return tuple(pytree.keystr(path) for path, _ in pytree.tree_flatten_with_path(inputs)[0])


# -- describing signatures to people --------------------------------------------------------

_DTYPE_NAMES = {
    torch.float32: "f32",
    torch.float64: "f64",
    torch.float16: "f16",
    torch.bfloat16: "bf16",
    torch.int64: "i64",
    torch.int32: "i32",
    torch.int16: "i16",
    torch.int8: "i8",
    torch.uint8: "u8",
    torch.bool: "bool",
    torch.complex64: "c64",
}


def format_signature(signature) -> str:
    """A short human form: ``f32[8, 16]`` for a tensor, with its device if not the CPU."""
    if isinstance(signature, tuple) and len(signature) == 4 and signature[0] == TENSOR:
        _, shape, dtype, device = signature
        text = f"{_DTYPE_NAMES.get(dtype, str(dtype).replace('torch.', ''))}[{', '.join(map(str, shape))}]"
        return text if device.type == "cpu" else f"{text}@{device}"
    if isinstance(signature, tuple):
        return "(" + ", ".join(format_signature(item) for item in signature) + ")"
    if signature is float:
        return "<float>"
    if isinstance(signature, type):
        return f"<{signature.__name__}>"
    return repr(signature)


def format_event(event: tuple) -> str:
    """An operation as ``aten.mm.default(f32[8, 16], f32[16, 4]) -> f32[8, 4]``."""
    head = event[0]
    if head == OPTIMIZER_STEP:
        return f"the beginning of optimizer.step() of optimizer {event[1]}"
    if head == OPTIMIZER_STEP_DONE:
        return f"the end of optimizer.step() of optimizer {event[1]}"
    _, args, kwargs, out = event
    parts = [format_signature(arg) for arg in args] + [f"{key}={format_signature(value)}" for key, value in kwargs]
    return f"{head}({', '.join(parts)}) -> {format_signature(out)}"

