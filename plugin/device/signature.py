"""Compact, comparable signatures of operations and step inputs.

An operation of the step is recorded as a tuple ``(op, args, kwargs, outputs)`` where
every tensor becomes ``(TENSOR, shape, dtype, device)``. Structural arguments (ints,
dtypes, devices, strings) are kept by value; Python floats by type only, because eager
code passes step-dependent floats that a compiled step turns into tensors (torch.optim's
bias corrections) -- host-side hyperparameters are checked on the param groups instead.
Tuples compare element by element, so verifying a step costs one tuple comparison per
operation.
"""
from __future__ import annotations

from typing import Any, Tuple

import torch
from torch.utils import _pytree as pytree

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

