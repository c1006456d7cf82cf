"""The Cerebras-compatible optimizer base class: all state exists before the first step.

A static-graph device compiles the first optimizer step, so an optimizer may not create
state during that step the way ``torch.optim`` optimizers do. ``Optimizer`` makes the
rule part of the type: a subclass allocates its state in ``preinitialize()``, which runs
in the constructor, and ``step()`` only updates it in place.

This is the public face of ``cerebras.pytorch.optim.Optimizer`` (same constructor,
methods and state-dict layout). Two things differ, on purpose:

* ``register_zero_grad_post_hook`` registers a hook that runs *after* ``zero_grad``
  (the published class files it with the pre-hooks, so it runs before);
* ``load_state_dict`` copies the loaded values into the tensors allocated at
  construction instead of replacing them, so state stays where a compiled step, a
  device capture or a scheduler expects it, and it never changes the caller's dict.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterable, List, Optional

import torch
from torch.utils.hooks import RemovableHandle

from ._scalars import new_scalar
from ._tags import normalise_group_tags


class Optimizer(torch.optim.Optimizer, ABC):
    """The abstract Cerebras base optimizer.

    Args:
        params: the tensors to optimize, or dicts defining parameter groups.
        defaults: the default value of every hyperparameter (used by groups that do not
            set their own).
        enable_global_step: if True, keep a ``step`` counter per parameter (a 0-d
            float tensor on the parameter's device), advanced by
            ``increment_global_step(p)``.
    """

    def __init__(self, params: Any, defaults: Dict[str, Any], enable_global_step: bool = False):
        self._optimizer_zero_grad_pre_hooks: Dict[int, Callable] = OrderedDict()
        self._optimizer_zero_grad_post_hooks: Dict[int, Callable] = OrderedDict()
        super().__init__(_parameter_list(params, type(self).__name__), defaults)
        self.enable_global_step = enable_global_step
        self.preinitialize()
        if enable_global_step:
            for group in self.param_groups:
                for p in group["params"]:
                    if "step" not in self.state[p]:
                        self.state[p]["step"] = new_scalar(0.0, p)

    # -- what a subclass provides ----------------------------------------------------

    @abstractmethod
    def preinitialize(self) -> None:
        """Allocate every state tensor now, so that the first step creates none.

        It runs in the constructor; a compiled or captured first step then sees the
        whole state.
        """

    @abstractmethod
    def step(self, closure: Optional[Callable[[], Any]] = None):
        """Perform one optimization step, updating parameters and state in place.

        No state may be created, replaced or reshaped here: all of it exists since
        ``preinitialize``.
        """

    # -- param groups ----------------------------------------------------------------

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        """Add a param group; its ``tags`` become a set, so schedulers can select it."""
        _check_group_parameters(self, param_group)
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        if group.get("tags"):
            group["tags"] = normalise_group_tags(group["tags"])

    # -- global step -----------------------------------------------------------------

    def increment_global_step(self, p: torch.Tensor) -> torch.Tensor:
        """Advance ``p``'s global step by one (in place) and return the step tensor."""
        state = self.state[p]
        if "step" not in state:
            raise RuntimeError(
                f"{type(self).__name__} keeps no global step for this parameter: construct the optimizer "
                f"with `enable_global_step=True` (in a subclass: pass it to `Optimizer.__init__`)."
            )
        state["step"].add_(1.0)
        return state["step"]

    # -- state -----------------------------------------------------------------------

    def state_dict(self, *args, **kwargs) -> Dict[str, Any]:
        """The optimizer's state in the ``torch.optim`` layout (``state`` and ``param_groups``)."""
        return super().state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Load a state saved by this class (or one translated to its layout).

        Loaded values are copied into the state tensors that already exist (keeping
        their dtype and device); keys this optimizer did not have are added as loaded.
        """
        state_dict = self._translate_state_dict(state_dict)
        saved_by_param = _saved_state_by_param(self, state_dict)
        _check_shapes(self, saved_by_param)  # before anything is replaced
        allocated = {p: dict(state) for p, state in self.state.items()}
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            if group.get("tags"):
                group["tags"] = normalise_group_tags(group["tags"])
        self._restore_state(allocated, saved_by_param)

    def _translate_state_dict(self, state_dict: Dict[str, Any]) -> Dict[str, Any]:
        """A copy of ``state_dict`` in this optimizer's layout (subclasses convert others)."""
        return _shallow_copy(state_dict)

    def _restore_state(self, allocated: Dict[torch.Tensor, dict], saved_by_param: Dict[torch.Tensor, dict]) -> None:
        """Put loaded values into the tensors allocated before the load, where they fit."""
        for p, saved in saved_by_param.items():
            own = allocated.get(p, {})
            state = self.state[p]
            for key, value in saved.items():
                target = own.get(key)
                if _fits(target, value):
                    target.copy_(value)
                    state[key] = target

    def visit_state(self, fn: Callable[[Any], Any]) -> None:
        """Call ``fn`` on every state value; a value it returns (not None) replaces the old one."""
        for state in self.state.values():
            for key, value in list(state.items()):
                new_value = fn(value)
                if new_value is not None:
                    state[key] = new_value

    def apply(self, f: Any):
        """Call ``f(self)``; an object with an ``apply`` method is applied to this optimizer instead."""
        if callable(f):
            return f(self)
        f_apply = getattr(f, "apply", None)
        if callable(f_apply):
            return f_apply(self)
        raise TypeError(
            f"{type(self).__name__}.apply expects a callable taking the optimizer (or an object with an "
            f"`apply(optimizer)` method), got {type(f).__name__}."
        )

    # -- pickling (copy.deepcopy, torch.save of the optimizer) ------------------------

    def __getstate__(self) -> Dict[str, Any]:
        state = super().__getstate__()
        state["enable_global_step"] = self.enable_global_step
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        # Also called by torch's load_state_dict on a live optimizer: only fill what is missing.
        # An unpickled copy starts without hooks, as torch.optim's step hooks are not kept.
        super().__setstate__(state)
        self.__dict__.setdefault("_optimizer_zero_grad_pre_hooks", OrderedDict())
        self.__dict__.setdefault("_optimizer_zero_grad_post_hooks", OrderedDict())
        self.__dict__.setdefault("enable_global_step", False)

    # -- zero_grad hooks -------------------------------------------------------------

    def register_zero_grad_pre_hook(self, hook: Callable) -> RemovableHandle:
        """Register ``hook(optimizer, args, kwargs)`` to run before ``zero_grad``.

        The hook may return ``(new_args, new_kwargs)`` to replace the arguments.
        Returns a handle whose ``remove()`` unregisters it.
        """
        handle = RemovableHandle(self._optimizer_zero_grad_pre_hooks)
        self._optimizer_zero_grad_pre_hooks[handle.id] = hook
        return handle

    def register_zero_grad_post_hook(self, hook: Callable) -> RemovableHandle:
        """Register ``hook(optimizer, args, kwargs)`` to run after ``zero_grad``.

        Returns a handle whose ``remove()`` unregisters it.
        """
        handle = RemovableHandle(self._optimizer_zero_grad_post_hooks)
        self._optimizer_zero_grad_post_hooks[handle.id] = hook
        return handle

    def zero_grad(self, *args, **kwargs) -> None:
        """Reset the gradients, running the zero_grad pre-hooks before and post-hooks after."""
        for hook in list(self._optimizer_zero_grad_pre_hooks.values()):
            result = hook(self, args, kwargs)
            if result is None:
                continue
            if not (isinstance(result, tuple) and len(result) == 2):
                raise RuntimeError(
                    f"zero_grad pre-hook {hook!r} returned {result!r}; a pre-hook returns None or a tuple "
                    f"(new_args, new_kwargs)."
                )
            args, kwargs = result
        super().zero_grad(*args, **kwargs)
        for hook in list(self._optimizer_zero_grad_post_hooks.values()):
            hook(self, args, kwargs)


# -- helpers ----------------------------------------------------------------------------


def _parameter_list(params: Any, owner: str) -> List[Any]:
    """``params`` as a list, refusing what torch.optim would refuse with a less helpful message."""
    if isinstance(params, torch.Tensor):
        raise TypeError(
            f"{owner}: `params` must be an iterable of tensors or of param-group dicts, got a single tensor; "
            f"pass [tensor] or model.parameters()."
        )
    if isinstance(params, dict):
        params = [params]
    params = list(params)
    if not params:
        raise ValueError(
            f"{owner}: got an empty parameter list; pass model.parameters() of a model that has parameters, "
            f"or a list of param-group dicts."
        )
    return params


def _check_group_parameters(optimizer: torch.optim.Optimizer, param_group: Dict[str, Any]) -> None:
    """Refuse an empty group, complex parameters and parameters listed twice, saying which and where.

    (A parameter in two groups would be updated twice per step.)
    """
    params = param_group.get("params")
    if isinstance(params, torch.Tensor):
        params = [params]
    elif isinstance(params, set) or params is None:
        return  # torch.optim explains both cases itself
    else:
        params = list(params)
        param_group["params"] = params
    if not params:
        raise ValueError(
            f"{type(optimizer).__name__}: param group {len(optimizer.param_groups)} has no parameters; "
            f"drop the group or give it tensors to optimize."
        )
    seen = {id(p): index for index, group in enumerate(optimizer.param_groups) for p in group["params"]}
    for position, p in enumerate(params):
        if id(p) in seen:
            raise ValueError(
                f"{type(optimizer).__name__}: parameter {position} of param group {len(optimizer.param_groups)} "
                f"is already in param group {seen[id(p)]}; each parameter may be in one group only."
            )
        if isinstance(p, torch.Tensor) and p.is_complex():
            raise ValueError(
                f"{type(optimizer).__name__}: parameter {position} of param group {len(optimizer.param_groups)} "
                f"is complex ({p.dtype}); the Cerebras optimizers take real floating-point parameters. Optimize "
                f"torch.view_as_real(p) instead."
            )
    positions = {}
    for position, p in enumerate(params):
        if id(p) in positions:
            raise ValueError(
                f"{type(optimizer).__name__}: parameter {position} of param group {len(optimizer.param_groups)} "
                f"repeats parameter {positions[id(p)]} of the same group; list each parameter once."
            )
        positions[id(p)] = position


def _shallow_copy(state_dict: Dict[str, Any]) -> Dict[str, Any]:
    """A copy that can be edited without touching the caller's dicts (tensors are shared)."""
    if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
        keys = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
        raise ValueError(
            f"An optimizer state dict has the keys 'state' and 'param_groups' (from optimizer.state_dict()); "
            f"got {keys}."
        )
    copied = dict(state_dict)
    copied["state"] = {key: dict(value) for key, value in state_dict["state"].items()}
    copied["param_groups"] = [dict(group) for group in state_dict["param_groups"]]
    return copied


def _saved_state_by_param(optimizer: torch.optim.Optimizer, state_dict: Dict[str, Any]) -> Dict[torch.Tensor, dict]:
    """The saved per-parameter state keyed by this optimizer's parameters (torch's pairing)."""
    saved_ids: Iterable = (i for group in state_dict["param_groups"] for i in group["params"])
    own = (p for group in optimizer.param_groups for p in group["params"])
    pairs = {}
    for saved_id, p in zip(saved_ids, own):
        if saved_id in state_dict["state"]:
            pairs[p] = state_dict["state"][saved_id]
    return pairs


def _check_shapes(optimizer: torch.optim.Optimizer, saved_by_param: Dict[torch.Tensor, dict]) -> None:
    """A saved state tensor whose shape differs from the allocated one was saved for another model."""
    for index, group in enumerate(optimizer.param_groups):
        for position, p in enumerate(group["params"]):
            own = optimizer.state.get(p, {})
            for key, value in saved_by_param.get(p, {}).items():
                target = own.get(key)
                if isinstance(target, torch.Tensor) and isinstance(value, torch.Tensor) and target.shape != value.shape:
                    raise ValueError(
                        f"{type(optimizer).__name__}.load_state_dict: saved state {key!r} of parameter {position} "
                        f"in param group {index} has shape {tuple(value.shape)}, but this parameter's is "
                        f"{tuple(target.shape)}; the state was saved for a different model. Nothing was loaded."
                    )


def _fits(target: Any, value: Any) -> bool:
    return isinstance(target, torch.Tensor) and isinstance(value, torch.Tensor) and target.shape == value.shape
