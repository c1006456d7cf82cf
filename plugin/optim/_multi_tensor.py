"""The shell shared by the wse optimizers: state slots, device/dtype buckets, kernel dispatch.

Each optimizer class says three things: which state a param group needs
(``_state_slots``), how its hyperparameters are checked (``_validate``) and which
multi-tensor kernel of ``wse.optim.functional`` updates a bucket (``_update``). This
class does the rest, the same way for all of them:

* ``preinitialize`` allocates every slot for every parameter (and again for a param
  group added later); scalar slots become views of one vector per group and bucket;
* ``step`` gathers the parameters that have a gradient into buckets of one device and
  dtype (as ``torch.optim`` groups its foreach kernels) and hands each bucket to the
  kernel, in place, without reading any tensor back to the host;
* ``load_state_dict`` translates foreign layouts (``torch.optim``, Hugging Face) and
  copies the values into the allocated tensors.
"""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from ._scalars import ScalarPacks, new_scalar, static_state, write_back
from .optimizer import Optimizer, _fits


def _always(p: torch.Tensor) -> bool:
    return True


@dataclass(frozen=True)
class Slot:
    """One entry of a parameter's state: how to make its initial value, and for which parameters."""

    scalar: bool
    make: Callable[[torch.Tensor], torch.Tensor]
    applies: Callable[[torch.Tensor], bool] = _always


def zeros_slot(applies: Callable[[torch.Tensor], bool] = _always) -> Slot:
    """A tensor shaped like the parameter, starting at zero."""
    return Slot(False, lambda p: torch.zeros_like(p, memory_format=torch.preserve_format), applies)


def full_slot(value: Any) -> Slot:
    """A tensor shaped like the parameter, filled with ``value`` (a number or a 0-d tensor)."""

    def make(p: torch.Tensor) -> torch.Tensor:
        filled = torch.empty_like(p, memory_format=torch.preserve_format)
        return filled.copy_(value) if isinstance(value, torch.Tensor) else filled.fill_(value)

    return Slot(False, make)


def scalar_slot(value: Any) -> Slot:
    """A 0-d tensor per parameter (see ``_scalars.scalar_dtype``), starting at ``value``."""
    return Slot(True, lambda p: new_scalar(value, p))


class Bucket:
    """The parameters of one group, device and dtype that have a gradient, with their state.

    ``state[name]`` lists one tensor per parameter (None where the slot does not apply);
    ``scalars[name]`` is a vector with one entry per parameter, updated in place by the
    kernel and written back to the parameters' 0-d state by ``write_back``.
    """

    __slots__ = ("params", "grads", "state", "scalars", "write_backs")

    def __init__(self):
        self.params: List[torch.Tensor] = []
        self.grads: List[torch.Tensor] = []
        self.state: Dict[str, List[Optional[torch.Tensor]]] = {}
        self.scalars: Dict[str, torch.Tensor] = {}
        self.write_backs: List[Tuple[torch.Tensor, List[torch.Tensor]]] = []

    def write_back(self) -> None:
        for vector, targets in self.write_backs:
            write_back(vector, targets)


class MultiTensorOptimizer(Optimizer):
    """Base of the wse optimizers: declared state, multi-tensor kernels, in-place loading."""

    # torch.optim group switches that choose an implementation, not the numbers.
    _IMPLEMENTATION_SWITCHES = ("foreach", "fused", "capturable", "differentiable")
    # torch.optim group switches that change the numbers; refused when on and not ours.
    _ALGORITHM_SWITCHES = ("maximize", "decoupled_weight_decay")

    def __init__(self, params: Any, defaults: Dict[str, Any], enable_global_step: bool = False):
        self._scalar_packs = ScalarPacks()
        self._state_ready = False
        super().__init__(params, defaults, enable_global_step=enable_global_step)
        self._state_ready = True

    # -- what each optimizer provides ------------------------------------------------

    @abstractmethod
    def _state_slots(self, group: Dict[str, Any]) -> Dict[str, Slot]:
        """The state each parameter of ``group`` has, by name (the published layout)."""

    def _validate(self, group: Dict[str, Any]) -> None:
        """Raise ``ValueError`` for a hyperparameter of ``group`` that is out of range."""

    @abstractmethod
    def _update(self, group: Dict[str, Any], bucket: Bucket) -> None:
        """Apply one step to ``bucket`` with the hyperparameters of ``group``."""

    def _translate_group(self, group: Dict[str, Any]) -> None:
        """Rename or convert a saved group's hyperparameters written by another library."""

    def _translate_param_state(self, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        """Convert one parameter's saved state written by another library (in place)."""

    # -- allocation ------------------------------------------------------------------

    def preinitialize(self) -> None:
        """Allocate every state tensor of every parameter (those that exist are kept)."""
        for group in self.param_groups:
            self._allocate(group)
        self._pack_scalars()

    def _allocate(self, group: Dict[str, Any]) -> None:
        slots = self._state_slots(group)
        for p in group["params"]:
            state = self.state[p]
            for name, slot in slots.items():
                if name not in state and slot.applies(p):
                    state[name] = static_state(slot.make(p))

    def _scalar_names(self, group: Dict[str, Any]) -> List[str]:
        return [name for name, slot in self._state_slots(group).items() if slot.scalar]

    def _pack_scalars(self) -> None:
        self._scalar_packs.pack(self.state, self.param_groups, self._scalar_names)

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        """Add a param group, check its hyperparameters and (after construction) allocate its state."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            self._validate(group)
        except (ValueError, TypeError):
            self.param_groups.pop()
            raise
        if self._state_ready:
            self._allocate(group)
            self._pack_scalars()

    # -- stepping --------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None):
        """Perform one optimization step on every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for index, group in enumerate(self.param_groups):
            for bucket in self._buckets(index, group):
                self._update(group, bucket)
                bucket.write_back()
        return loss

    def _buckets(self, index: int, group: Dict[str, Any]) -> List[Bucket]:
        slots = self._state_slots(group)
        tensor_names = [name for name, slot in slots.items() if not slot.scalar]
        scalar_names = [name for name, slot in slots.items() if slot.scalar]
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            return []
        grads = [p.grad for p in params]
        if any(grad.layout != torch.strided for grad in grads):
            shape = next(tuple(p.shape) for p, grad in zip(params, grads) if grad.layout != torch.strided)
            raise RuntimeError(
                f"{type(self).__name__} does not support sparse gradients (a parameter of shape {shape} in param "
                f"group {index} has one); use a dense gradient, e.g. nn.Embedding(sparse=False), or "
                f"torch.optim.SparseAdam for that parameter."
            )
        states = [self.state[p] for p in params]
        keys = [(p.device, p.dtype) for p in params]
        if keys.count(keys[0]) == len(keys):
            members = {keys[0]: None}  # the common case: one device and dtype
        else:
            members = {}
            for position, key in enumerate(keys):
                members.setdefault(key, []).append(position)
        buckets = []
        for (device, dtype), positions in members.items():
            bucket = Bucket()
            if positions is None:
                bucket.params, bucket.grads, own = params, grads, states
            else:
                bucket.params = [params[i] for i in positions]
                bucket.grads = [grads[i] for i in positions]
                own = [states[i] for i in positions]
            for name in tensor_names:
                bucket.state[name] = [state.get(name) for state in own]
            for name in scalar_names:
                values = [state.get(name) for state in own]
                if any(value is None for value in values):
                    raise RuntimeError(
                        f"{type(self).__name__}: a parameter in param group {index} has no {name!r} in its state; "
                        f"state is allocated by preinitialize() and must not be deleted (load a saved state "
                        f"with load_state_dict instead)."
                    )
                vector, targets = self._scalar_packs.vector((index, name, device, dtype), values)
                bucket.scalars[name] = vector
                if targets is not None:
                    bucket.write_backs.append((vector, targets))
            buckets.append(bucket)
        return buckets

    # -- loading ---------------------------------------------------------------------

    def _translate_state_dict(self, state_dict: Dict[str, Any]) -> Dict[str, Any]:
        state_dict = super()._translate_state_dict(state_dict)
        owner = type(self).__name__
        for saved, own in zip(state_dict["param_groups"], self.param_groups):
            self._translate_group(saved)
            for key in self._IMPLEMENTATION_SWITCHES:
                if key not in self.defaults:
                    saved.pop(key, None)
            for key in self._ALGORITHM_SWITCHES:
                if key in saved and key not in self.defaults and saved.pop(key):
                    raise ValueError(
                        f"{owner}.load_state_dict: the saved param group has {key}=True, which {owner} does not "
                        f"implement, so training could not continue as it was; load it into an optimizer that "
                        f"has `{key}`."
                    )
            # Hyperparameters the saved group does not name keep their current values.
            for key, value in own.items():
                if key != "params":
                    saved.setdefault(key, value)
        group_of = {i: group for group in state_dict["param_groups"] for i in group["params"]}
        for saved_id, state in state_dict["state"].items():
            for key, value in list(state.items()):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    state[key] = torch.tensor(float(value), dtype=torch.float64)
            if saved_id in group_of:
                self._translate_param_state(state, group_of[saved_id])
        return state_dict

    def _restore_state(self, allocated: Dict[torch.Tensor, dict], saved_by_param: Dict[torch.Tensor, dict]) -> None:
        """Each slot gets the saved value, or its initial value if none was saved, in place."""
        owner = type(self).__name__
        for index, group in enumerate(self.param_groups):
            slots = self._state_slots(group)
            for position, p in enumerate(group["params"]):
                saved = saved_by_param.get(p, {})
                own = allocated.get(p, {})
                restored = {}
                for name, slot in slots.items():
                    if not slot.applies(p):
                        continue
                    value = saved.get(name)
                    if value is None:
                        value = slot.make(p)
                    if not isinstance(value, torch.Tensor):
                        raise ValueError(
                            f"{owner}.load_state_dict: saved state {name!r} of parameter {position} in param "
                            f"group {index} is a {type(value).__name__}, expected a tensor."
                        )
                    target = own.get(name)
                    if not _fits(target, value):
                        target = static_state(slot.make(p))
                        if target.shape != value.shape:
                            raise ValueError(
                                f"{owner}.load_state_dict: saved state {name!r} of parameter {position} in param "
                                f"group {index} has shape {tuple(value.shape)}, but this parameter needs "
                                f"{tuple(target.shape)}; the state was saved for a different model."
                            )
                    restored[name] = target.copy_(value)
                # Anything else (keys of another layout, slots the loaded settings do not use) is dropped.
                self.state[p] = restored
        self._pack_scalars()

    def __setstate__(self, state: Dict[str, Any]) -> None:
        super().__setstate__(state)
        if "_scalar_packs" not in self.__dict__:  # an unpickled copy, not torch's load_state_dict
            self._scalar_packs = ScalarPacks()
            self._state_ready = True
            self._pack_scalars()

    def visit_state(self, fn: Callable[[Any], Any]) -> None:
        """Call ``fn`` on every state value; a value it returns (not None) replaces the old one."""
        super().visit_state(fn)
        self._pack_scalars()
