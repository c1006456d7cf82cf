"""Allocate every optimizer's state before its first step, each in its own state layout.

A static-graph device compiles the first step, so state that an optimizer creates during
that step (as every ``torch.optim`` optimizer does) would change the graph and the memory
plan after the fact. Here the state is allocated at setup instead:

* an optimizer with a ``preinitialize()`` method (every ``wse.optim`` optimizer, or one
  of the user's) allocates its own state;
* a ``torch.optim`` optimizer that has a ``wse.optim`` counterpart gets exactly the
  tensors its ``_init_group`` would create on the first step (same keys, dtypes, devices
  and ``step`` conventions), so its numbers stay torch's;
* any other optimizer is refused with a message that says how to fix it.

``torch.optim.SGD`` with momentum is the one case where the lazy layout carries numbers:
torch starts the momentum buffer from the first gradient, undamped. A zero buffer
allocated in advance gives the same first step when ``dampening == 0`` (the buffer
becomes ``momentum * 0 + 1 * grad``, the gradient itself), so that is what is done; with
``dampening != 0`` the first step would differ, and the group is refused instead.

Nothing here imports Lightning: the Accelerate integration uses it too.
"""
from __future__ import annotations

import inspect
from typing import Callable, Dict, List, Optional

import torch

from .errors import LazyOptimizerStateError
from .options import enforce, validate_strict

State = Dict[str, torch.Tensor]


# -- the tensors torch.optim would create (see each class's `_init_group` in torch 2.13) ---


def _scalar_dtype(fused: bool = False) -> torch.dtype:
    """The dtype torch.optim gives its scalar state (``step``, ``eta``, ``mu_product``...)."""
    if fused:
        return torch.float32
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _step(p: torch.Tensor, on_device: bool, fused: bool = False) -> torch.Tensor:
    """The ``step`` counter: on the parameter's device when capturable or fused, else on the CPU."""
    if on_device:
        return torch.zeros((), dtype=_scalar_dtype(fused), device=p.device)
    return torch.tensor(0.0, dtype=_scalar_dtype())


def _zeros(p: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(p, memory_format=torch.preserve_format)


def _scalar(value):
    """A hyperparameter as torch.optim reads it: a 1-element tensor squeezed to 0-d, else as is."""
    if isinstance(value, torch.Tensor) and value.dim() != 0:
        return value.squeeze()
    return value


def _adam_state(group: dict, p: torch.Tensor) -> State:
    fused = bool(group.get("fused"))
    state = {
        "step": _step(p, on_device=bool(group["capturable"]) or fused, fused=fused),
        "exp_avg": _zeros(p),
        "exp_avg_sq": _zeros(p),
    }
    if group["amsgrad"]:
        state["max_exp_avg_sq"] = _zeros(p)
    return state


def _adadelta_state(group: dict, p: torch.Tensor) -> State:
    return {"step": _step(p, bool(group["capturable"])), "square_avg": _zeros(p), "acc_delta": _zeros(p)}


def _adagrad_state(group: dict, p: torch.Tensor) -> State:
    fused = bool(group.get("fused"))
    initial = group["initial_accumulator_value"]
    fill = complex(initial, initial) if torch.is_complex(p) else initial
    return {
        "step": _step(p, on_device=fused, fused=fused),
        "sum": torch.full_like(p, fill, memory_format=torch.preserve_format),
    }


def _adamax_state(group: dict, p: torch.Tensor) -> State:
    return {"step": _step(p, bool(group["capturable"])), "exp_avg": _zeros(p), "exp_inf": _zeros(p)}


def _asgd_state(group: dict, p: torch.Tensor) -> State:
    dtype = _scalar_dtype()
    return {
        "step": torch.zeros((), device=p.device, dtype=dtype),
        "eta": torch.as_tensor(_scalar(group["lr"]), device=p.device, dtype=dtype).clone().detach(),
        "mu": torch.ones((), device=p.device, dtype=dtype),
        "ax": _zeros(p),
    }


def _nadam_state(group: dict, p: torch.Tensor) -> State:
    on_device = bool(group["capturable"])
    mu_product = (
        torch.ones((), dtype=_scalar_dtype(), device=p.device) if on_device else torch.tensor(1.0, dtype=_scalar_dtype())
    )
    return {"step": _step(p, on_device), "mu_product": mu_product, "exp_avg": _zeros(p), "exp_avg_sq": _zeros(p)}


def _radam_state(group: dict, p: torch.Tensor) -> State:
    return {"step": _step(p, bool(group["capturable"])), "exp_avg": _zeros(p), "exp_avg_sq": _zeros(p)}


def _rmsprop_state(group: dict, p: torch.Tensor) -> State:
    state = {"step": _step(p, bool(group["capturable"])), "square_avg": _zeros(p)}
    if group["momentum"] > 0:
        state["momentum_buffer"] = _zeros(p)
    if group["centered"]:
        state["grad_avg"] = _zeros(p)
    return state


def _rprop_state(group: dict, p: torch.Tensor) -> State:
    lr = group["lr"]
    fill = complex(lr, lr) if p.dtype.is_complex else _scalar(lr)
    return {"step": _step(p, bool(group["capturable"])), "prev": _zeros(p), "step_size": torch.full_like(p, fill)}


def _sgd_state(group: dict, p: torch.Tensor) -> State:
    # Without momentum torch.optim.SGD keeps no state at all.
    return {"momentum_buffer": _zeros(p)} if group["momentum"] != 0 else {}


def _sgd_refusal(group: dict) -> Optional[str]:
    if group["momentum"] != 0 and group["dampening"] != 0:
        return (
            f"it has momentum={group['momentum']} with dampening={group['dampening']}, and torch starts the "
            f"momentum buffer from the first gradient undamped (dampening applies from the second step), so "
            f"a buffer allocated in advance would change its first step. Use dampening=0 (then a zero buffer "
            f"gives exactly torch's numbers), or wse.optim.SGD, whose buffer starts at zero and is damped "
            f"from the first step"
        )
    return None


# torch class -> (the state of one parameter, a group-level reason it cannot be done in advance).
_TORCH_LAYOUTS: Dict[type, tuple] = {
    torch.optim.Adadelta: (_adadelta_state, None),
    torch.optim.Adagrad: (_adagrad_state, None),
    torch.optim.Adam: (_adam_state, None),
    torch.optim.AdamW: (_adam_state, None),
    torch.optim.Adamax: (_adamax_state, None),
    torch.optim.ASGD: (_asgd_state, None),
    torch.optim.NAdam: (_nadam_state, None),
    torch.optim.RAdam: (_radam_state, None),
    torch.optim.RMSprop: (_rmsprop_state, None),
    torch.optim.Rprop: (_rprop_state, None),
    torch.optim.SGD: (_sgd_state, _sgd_refusal),
}

SUPPORTED_TORCH_OPTIMIZERS = tuple(cls.__name__ for cls in _TORCH_LAYOUTS)


def _innermost(function):
    return inspect.unwrap(function) if callable(function) else function


def _torch_layout(optimizer: torch.optim.Optimizer) -> Optional[type]:
    """The torch class whose layout ``optimizer`` has, if its step is that class's own."""
    for cls in type(optimizer).__mro__:
        if cls in _TORCH_LAYOUTS:
            # A subclass with its own step or `_init_group` may keep other state: not ours to
            # guess. (torch wraps each class's `step` in a profiling hook, hence the unwrap.)
            for method in ("step", "_init_group"):
                if _innermost(getattr(type(optimizer), method, None)) is not _innermost(getattr(cls, method, None)):
                    return None
            return cls
    return None


def _trainable_params(optimizer: torch.optim.Optimizer):
    for index, group in enumerate(optimizer.param_groups):
        for p in group["params"]:
            if p.requires_grad:
                yield index, group, p


def has_all_state(optimizer: torch.optim.Optimizer) -> bool:
    """Whether every trainable parameter already has an entry in ``optimizer.state``."""
    return all(optimizer.state.get(p) for _, _, p in _trainable_params(optimizer))


def _counterpart_hint(name: str) -> str:
    from .. import optim as wse_optim

    if hasattr(wse_optim, name) and isinstance(getattr(wse_optim, name), type):
        return f"wse.optim.{name}"
    return "a wse.optim optimizer"


def preinitialize(optimizer: torch.optim.Optimizer, strict: str = "raise") -> str:
    """Allocate all of ``optimizer``'s state now; return how it was done, in a few words.

    Parameters that already have state (loaded, or allocated by the optimizer itself) and
    parameters that do not require gradients are left alone. ``strict`` says what happens
    to an optimizer whose state cannot be allocated in advance: ``"raise"`` a
    ``LazyOptimizerStateError``, ``"warn"``, or nothing (``"off"``); in the last two
    cases it keeps creating its state lazily.
    """
    validate_strict(strict)
    name = type(optimizer).__name__
    preinitialize_method: Optional[Callable] = getattr(optimizer, "preinitialize", None)
    if callable(preinitialize_method):
        if not has_all_state(optimizer):
            preinitialize_method()
        return f"{name}: preinitialize()"

    layout = _torch_layout(optimizer)
    if layout is None:
        enforce(
            strict,
            LazyOptimizerStateError,
            f"{name} ({type(optimizer).__module__}) is not known to allocate its state before its first "
            f"step, and a static-graph device needs all optimizer state to exist before that step. Use "
            f"{_counterpart_hint(name)}, or give {name} a `preinitialize()` method that allocates all of "
            f"its state (a stateless optimizer can define one that does nothing). Optimizers of torch.optim "
            f"handled in place: {', '.join(SUPPORTED_TORCH_OPTIMIZERS)}. To train anyway, pass "
            f"WSEStrategy(strict='warn') or strict='off'.",
        )
        return f"{name}: lazy state (not preinitialized)"

    make_state, group_refusal = _TORCH_LAYOUTS[layout]
    refused: List[int] = []
    for index, group, p in _trainable_params(optimizer):
        if index in refused or optimizer.state.get(p):
            continue
        reason = group_refusal(group) if group_refusal else None
        if reason is not None:
            refused.append(index)
            enforce(
                strict,
                LazyOptimizerStateError,
                f"torch.optim.{layout.__name__} cannot have its state allocated before its first step in "
                f"param group {index}: {reason}. To train anyway, pass WSEStrategy(strict='warn') or "
                f"strict='off'.",
            )
            continue
        state = make_state(group, p)
        if state:
            optimizer.state[p] = state
    if refused:
        return f"{name}: torch layout, lazy in param groups {refused}"
    return f"{name}: torch layout"
