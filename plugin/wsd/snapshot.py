"""Run snapshots: capture a training run's state and put it back bit for bit, in place.

A decay branch trains ahead from the current state and must then leave the run exactly
as it was. ``RunSnapshot.capture`` copies the model's parameters, buffers and
gradients, the optimizers' per-parameter state and param groups, the schedulers'
attributes and the random number generators (torch CPU and CUDA, Python ``random``,
numpy). ``restore`` writes the saved values back into the same tensors where it can,
so that anything holding a reference to them (an optimizer, a captured graph, a
tensor-valued learning rate in a param group) keeps seeing the run's tensors.
"""
from __future__ import annotations

import copy
import random
import sys
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

import torch

__all__ = ["RunSnapshot", "capture_rng_states", "restore_rng_states"]


# -- random number generators ---------------------------------------------------------


def capture_rng_states() -> Dict[str, Any]:
    """The states of every generator a training step may draw from."""
    states = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    numpy = sys.modules.get("numpy")  # never imported just for this
    if numpy is not None:
        states["numpy"] = numpy.random.get_state()
    return states


def restore_rng_states(states: Dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    if "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])
    if "numpy" in states:
        sys.modules["numpy"].random.set_state(states["numpy"])


# -- trees of tensors -----------------------------------------------------------------


class _Stored(NamedTuple):
    """A tensor's copy and the device the tensor lived on."""

    tensor: torch.Tensor
    device: torch.device


def _store(value, storage: Optional[torch.device]):
    """Nested dicts/lists/tuples with every tensor copied (onto ``storage`` if given)."""
    if isinstance(value, torch.Tensor):
        return _Stored(value.detach().to(storage or value.device, copy=True), value.device)
    if type(value) is dict:
        return {k: _store(v, storage) for k, v in value.items()}
    if type(value) is list:
        return [_store(v, storage) for v in value]
    if type(value) is tuple:
        return tuple(_store(v, storage) for v in value)
    return copy.deepcopy(value)


def _fresh(saved):
    """A new value from a stored tree, its tensors back on their devices."""
    if isinstance(saved, _Stored):
        return saved.tensor.to(saved.device, copy=True)
    if type(saved) is dict:
        return {k: _fresh(v) for k, v in saved.items()}
    if type(saved) is list:
        return [_fresh(v) for v in saved]
    if type(saved) is tuple:
        return tuple(_fresh(v) for v in saved)
    return copy.deepcopy(saved)


def _restore_value(current, saved, fresh=_fresh):
    """The value to keep after restoring ``saved`` over ``current``: ``current`` itself, updated, where possible."""
    if current is saved:
        return current
    source = saved.tensor if isinstance(saved, _Stored) else saved
    if (
        isinstance(current, torch.Tensor)
        and isinstance(source, torch.Tensor)
        and current.shape == source.shape
        and current.dtype == source.dtype
    ):
        with torch.no_grad():
            current.copy_(source)
        return current
    if isinstance(current, dict) and type(saved) is dict:
        _restore_dict(current, saved, fresh)
        return current
    if isinstance(current, list) and type(saved) is list and len(current) == len(saved):
        for i, (c, s) in enumerate(zip(current, saved)):
            current[i] = _restore_value(c, s, fresh)
        return current
    if type(current) is type(saved) and _is_plain_object(current):
        # An object a scheduler holds (a child scheduler): the same object, its attributes restored.
        _restore_dict(vars(current), vars(saved), fresh)
        return current
    return fresh(saved)


def _is_plain_object(value) -> bool:
    return (
        hasattr(value, "__dict__")
        and not isinstance(value, (type, torch.Tensor, torch.nn.Module, torch.optim.Optimizer))
        and not callable(getattr(value, "__func__", None))
        and type(value).__module__ != "builtins"
    )


def _restore_dict(current: dict, saved: dict, fresh=_fresh) -> None:
    for key in [k for k in current if k not in saved]:
        del current[key]
    for key, value in saved.items():
        current[key] = _restore_value(current[key], value, fresh) if key in current else fresh(value)


# -- the snapshot ---------------------------------------------------------------------


class RunSnapshot:
    """The state of a model, its optimizers and schedulers, and the RNGs, at one moment.

    Args:
        model: the ``torch.nn.Module`` being trained (parameters, buffers and gradients).
        optimizers: the optimizers (per-parameter state and param groups).
        schedulers: any objects stepped with the run (their attributes; references to the
            optimizers, the model and its parameters are kept, not copied).
        storage: where the copies of model and optimizer tensors are kept; ``"cpu"`` (the
            default) spares accelerator memory, ``None`` keeps each on its tensor's device.
    """

    def __init__(self, model: torch.nn.Module, optimizers: Sequence = (), schedulers: Sequence = (),
                 storage: Optional[str] = "cpu"):
        self.model = model
        self.optimizers = list(optimizers)
        self.schedulers = list(schedulers)
        self._storage = None if storage is None else torch.device(storage)
        self._tensors: Dict[str, _Stored] = {}
        self._grads: Dict[str, Optional[_Stored]] = {}
        self._optimizer_states: List[tuple] = []
        self._scheduler_states: List[dict] = []
        self._rng: Dict[str, Any] = {}

    @classmethod
    def capture(cls, model, optimizers: Sequence = (), schedulers: Sequence = (),
                storage: Optional[str] = "cpu") -> "RunSnapshot":
        """Copy the current state (see the class docstring)."""
        snapshot = cls(model, optimizers, schedulers, storage)
        snapshot._capture()
        return snapshot

    def _named_tensors(self) -> Dict[str, torch.Tensor]:
        tensors = dict(self.model.named_parameters())
        tensors.update(self.model.named_buffers())
        return tensors

    def _kept_references(self) -> Dict[int, Any]:
        """A deepcopy memo that keeps the run's own objects instead of copying them."""
        keep = {id(o): o for o in self.optimizers}
        keep.update((id(p), p) for p in self.model.parameters())
        keep[id(self.model)] = self.model
        return keep

    def _capture(self) -> None:
        storage = self._storage
        self._tensors = {name: _store(t, storage) for name, t in self._named_tensors().items()}
        self._grads = {
            name: None if p.grad is None else _store(p.grad, storage) for name, p in self.model.named_parameters()
        }
        # Per-parameter state is keyed by the parameter object, as the optimizer keys it.
        self._optimizer_states = [
            (
                {p: _store(dict(s), storage) for p, s in optimizer.state.items()},
                [_store({k: v for k, v in g.items() if k != "params"}, storage) for g in optimizer.param_groups],
            )
            for optimizer in self.optimizers
        ]
        self._scheduler_states = [copy.deepcopy(vars(s), self._kept_references()) for s in self.schedulers]
        self._rng = capture_rng_states()

    def restore(self) -> None:
        """Put the captured state back: the same values, in the same tensors where shapes allow."""
        current = self._named_tensors()
        missing = sorted(set(self._tensors) - set(current))
        if missing:
            raise RuntimeError(
                f"RunSnapshot.restore: the model no longer has {missing[:5]}; it changed structure since the capture."
            )
        with torch.no_grad():
            for name, saved in self._tensors.items():
                current[name].copy_(saved.tensor)
        for name, parameter in self.model.named_parameters():
            saved = self._grads.get(name)
            parameter.grad = None if saved is None else _restore_value(parameter.grad, saved)
        for optimizer, (state, _) in zip(self.optimizers, self._optimizer_states):
            for parameter in [p for p in optimizer.state if p not in state]:
                del optimizer.state[parameter]
            for parameter, saved in state.items():
                if parameter in optimizer.state:
                    _restore_dict(optimizer.state[parameter], saved)
                else:
                    optimizer.state[parameter] = _fresh(saved)
        for scheduler, saved in zip(self.schedulers, self._scheduler_states):
            memo = self._kept_references()
            _restore_dict(vars(scheduler), saved, lambda value: copy.deepcopy(value, memo))
        # The param groups hold the values the schedulers wrote: they go back last.
        for optimizer, (_, groups) in zip(self.optimizers, self._optimizer_states):
            for group, saved in zip(optimizer.param_groups, groups):
                for key, value in saved.items():
                    group[key] = _restore_value(group[key], value) if key in group else _fresh(value)
        restore_rng_states(self._rng)

    def __repr__(self) -> str:
        size = sum(s.tensor.numel() * s.tensor.element_size() for s in self._tensors.values())
        return (
            f"RunSnapshot({len(self._tensors)} model tensors, {size / 2**20:.1f} MiB, "
            f"optimizers={len(self.optimizers)}, schedulers={len(self.schedulers)}, storage={self._storage})"
        )
