"""The generic scheduler base: a schedule bound to one key of an optimizer's param groups.

A scheduler here owns bookkeeping only (the step counter, the targeted groups, the
state dict); the numbers come from a ``wse.schedules`` value built from the
constructor's arguments. It is stepped once per optimizer step, and construction
performs the first step, so the value in the param groups at iteration ``i`` is the
schedule at step ``i``.

Two ways of writing the value:

* host values (default): a Python float per step, which any ``torch.optim`` optimizer
  accepts;
* tensor values (``enable_tensor_values()``): one 0-d tensor per targeted group,
  updated in place from a step tensor, so that a compiled optimizer step that reads the
  value sees the same tensor every step and is never recompiled.
"""
from __future__ import annotations

import inspect
import warnings
from abc import ABC, abstractmethod
from typing import List, Optional

import torch

from ..schedules import Schedule
from ..schedules._backend import HOST
from ._host_only import host_only, keep_out_of_graphs
from ._tags import TagSpec, group_matches, normalise_scheduler_tags, require_every_tag_matches

# Constructor arguments that are bookkeeping, not arguments that define the schedule.
_NOT_HYPERPARAMETERS = frozenset({"self", "optimizer", "schedulers", "scheduler", "last_epoch", "param_group_tags"})


class Hyperparameter:
    """An argument that defines the schedule: setting it makes the schedule be rebuilt.

    Setting it clears the cached attribute named ``invalidates``. A descriptor rather than
    a ``__setattr__`` hook so that the attributes written on every step (the counter, the
    last values) cost nothing extra.
    """

    def __init__(self, name: str, invalidates: str = "_schedule"):
        self.name = name
        self.invalidates = invalidates

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        try:
            return instance.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None

    def __set__(self, instance, value):
        instance.__dict__[self.name] = value
        instance.__dict__[self.invalidates] = None


class Scheduler(torch.optim.lr_scheduler.LRScheduler, ABC):
    """Generic scheduler for any param-group value.

    Args:
        optimizer: the optimizer to schedule (any ``torch.optim.Optimizer``).
        total_iters: number of steps the schedule spans (meaning depends on the subclass).
        last_epoch: the step before the first one; ``-1`` starts at step 0.
        param_group_tags: a tag or list of tags; only groups whose ``tags`` intersect it
            are scheduled. ``None`` in the list targets untagged groups.
    """

    # How the generic argument names read in this family (LR classes rename them).
    _public_names: dict = {}
    total_iters = Hyperparameter("total_iters")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Every constructor argument that defines the schedule invalidates it when set.
        for name in inspect.signature(cls.__init__).parameters:
            if name not in _NOT_HYPERPARAMETERS and not name.startswith("_") and name not in ("args", "kwargs"):
                # Keep any descriptor already there (a property, or an alias of another name).
                if not hasattr(type(inspect.getattr_static(cls, name, None)), "__set__"):
                    setattr(cls, name, Hyperparameter(name))
        # Subclasses written in the reference's style (overriding how values are
        # computed or written) take the general path; the others the fast one.
        cls._fast_path = all(
            getattr(cls, method) is getattr(Scheduler, method)
            for method in ("get", "_get_closed_form", "update_groups", "update_last_value", "increment_last_epoch")
        )

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_iters: Optional[int],
        last_epoch: int = -1,
        param_group_tags: TagSpec = None,
    ):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"{type(self).__name__} needs a torch.optim.Optimizer, got {type(optimizer).__name__}."
            )
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, int) or last_epoch < -1:
            raise ValueError(f"{type(self).__name__}: `last_epoch` must be an integer >= -1, got {last_epoch!r}.")
        self.optimizer = optimizer
        self.total_iters = total_iters
        self.param_group_tags = normalise_scheduler_tags(param_group_tags, type(self).__name__)
        self._validate_tags_apply()
        self._schedule = self._build_schedule()
        self._key = self.param_group_key
        self._plan = None
        self._step_tensor = None
        self._value_tensors = None
        self._get_called_within_step = False
        self._last_value = [None] * len(optimizer.param_groups)
        self.last_epoch = last_epoch
        self._step_count = 0
        self._check_children()
        self.step()

    # -- what subclasses provide ------------------------------------------------------

    @property
    @abstractmethod
    def param_group_key(self) -> str:
        """The param-group key this scheduler writes, e.g. ``"lr"`` or ``"weight_decay"``."""

    @abstractmethod
    def _build_schedule(self) -> Schedule:
        """The ``wse.schedules`` value defined by this scheduler's arguments."""

    def _check_children(self) -> None:
        """Composite schedulers validate their children here."""

    def _chain_divisor(self):
        """The value this scheduler is divided by when chained as a relative factor."""
        return getattr(self, "initial_val", None)

    def _require(self, check, **values) -> None:
        """Run a validation with the argument names the user wrote."""
        check(type(self).__name__, **{self._public_names.get(k, k): v for k, v in values.items()})

    # -- the schedule -----------------------------------------------------------------

    @property
    def schedule(self) -> Schedule:
        """The closed form this scheduler follows (a pure function of the step)."""
        schedule = self._schedule
        if schedule is None:
            schedule = self._schedule = self._build_schedule()
        return schedule

    def decay_periods(self) -> list:
        """The WSD decay-period protocol: the schedule's decay periods, or none.

        A scheduler bound to ``wse.schedules.WarmupStableDecay`` reports its periods
        (the step counts ``last_epoch``); every other schedule has none.
        """
        periods = getattr(self.schedule, "decay_periods", None)
        return list(periods()) if periods is not None else []

    def _get_closed_form(self):
        """The value at ``last_epoch`` (a tensor in tensor mode, else a float)."""
        if self._step_tensor is not None:
            return self.schedule(self._step_tensor.to(self._value_tensors[0].dtype))
        return self.schedule(self.last_epoch)

    def _should_apply_to_param_group(self, param_group: dict) -> bool:
        return group_matches(self.param_group_tags, param_group)

    def _validate_tags_apply(self) -> None:
        require_every_tag_matches(self.param_group_tags, self.optimizer.param_groups, type(self).__name__)

    def _group_scales(self) -> List[Optional[float]]:
        """Per group: None if not targeted, else the factor applied to the schedule value."""
        return [1.0 if self._should_apply_to_param_group(group) else None for group in self.optimizer.param_groups]

    def _write_plan(self):
        """(group index, scale) of every targeted group; redone if groups are added.

        A group added with ``optimizer.add_param_group`` after construction is scheduled
        from the next step on, as torch's schedulers do: it gets the schedule's value
        (times its own scale) if the scheduler's tags select it.
        """
        plan = self._plan
        if plan is None or plan[0] != len(self.optimizer.param_groups):
            plan = self._replan()
        return plan[1]

    def _replan(self):
        scales = self._group_scales()
        count = len(scales)
        plan = self._plan = (count, [(i, s) for i, s in enumerate(scales) if s is not None])
        self._last_value = (list(self._last_value) + [None] * count)[:count]
        buffers = self._value_tensors
        if buffers is not None and len(buffers) < count:
            buffers.extend(torch.zeros_like(buffers[0]) for _ in range(count - len(buffers)))
        if buffers is not None:
            for index, _ in plan[1]:
                self._last_value[index] = buffers[index]
        return plan

    # -- stepping ---------------------------------------------------------------------

    def get(self):
        """The values for every param group at ``last_epoch`` (None where not targeted)."""
        if not self._get_called_within_step:
            warnings.warn("To get the last value computed by the scheduler, please use `get_last_value()`.")
        value = self._get_closed_form()
        return [None if scale is None else value * scale for scale in self._group_scales()]

    def increment_last_epoch(self) -> None:
        """Increments the last epoch by 1."""
        self.last_epoch += 1
        if self._step_tensor is not None:
            self._step_tensor.add_(1)

    def step(self, epoch=None) -> None:
        """Advance one optimizer step and write the new value into the param groups.

        These schedulers step once per optimizer step and take no ``epoch``: torch's
        deprecated ``step(epoch)`` (jump to an epoch, or a fractional epoch for
        ``CosineAnnealingWarmRestarts``) would silently give other numbers here, so it
        is refused.
        """
        if epoch is not None:
            raise TypeError(
                f"{type(self).__name__}.step() takes no epoch (got {epoch!r}): wse schedulers step once "
                f"per optimizer step (iteration), and their arguments count iterations. Call step() after "
                f"every optimizer.step(), and express epochs in iterations (epochs * steps per epoch); to "
                f"resume at a step, load the scheduler's state_dict."
            )
        if not self._fast_path:
            self.increment_last_epoch()
            self._step_count += 1
            self.update_last_value()
        elif self._step_tensor is None:
            self._step_on_host()
        else:
            self._step_tensor_values()

    def _step_on_host(self) -> None:
        # Kept lean: it runs on every training step.
        self.last_epoch += 1
        self._step_count += 1
        value = (self._schedule or self.schedule).evaluate(float(self.last_epoch), HOST)
        plan = self._write_plan()  # before reading the last values, which it may resize
        groups, key, last = self.optimizer.param_groups, self._key, self._last_value
        for index, scale in plan:
            groups[index][key] = last[index] = value * scale

    @host_only
    def _step_tensor_values(self) -> None:
        """Advance the Python counters and write the schedule's value into the tensor buffers.

        The whole of it runs outside compiled graphs: the counters must (a traced count
        would specialise the step's graph on every new value), and the evaluation then
        does too. Left to dynamo, the evaluation after that graph break would be the one
        frame it compiles at top level, ``Schedule.__call__``, shared by every schedule
        class and guarded on each one's type and constants: after 8 of them in a process
        (the recompile limit) it would silently stop being compiled. Eager, it costs a few
        small tensor operations per step whatever the number of schedules, and the buffers
        the compiled optimizer step reads are the same tensors at every step.
        """
        self.last_epoch += 1
        self._step_count += 1
        self._step_tensor.add_(1)
        plan = self._write_plan()
        buffers = self._value_tensors
        value = (self._schedule or self.schedule)(self._step_tensor.to(buffers[0].dtype))
        groups, key = self.optimizer.param_groups, self._key
        for index, scale in plan:
            buffer = buffers[index]
            buffer.copy_(value * scale)
            if groups[index].get(key) is not buffer:  # replaced by an optimizer's load_state_dict
                groups[index][key] = buffer

    def update_last_value(self) -> None:
        """Compute the value at ``last_epoch`` and write it into the targeted groups."""
        self._get_called_within_step = True
        try:
            values = self.get()
        finally:
            self._get_called_within_step = False
        self.update_groups(values)

    def update_groups(self, values) -> None:
        """Write ``values`` (one per param group, None to skip) into the param groups."""
        key = self._key
        groups = self.optimizer.param_groups
        self._write_plan()  # makes room for groups added since the last step
        if self._value_tensors is None:
            for group, value in zip(groups, values):
                if value is not None:
                    group[key] = value
            self._last_value = list(values)
            return
        for index, (group, value) in enumerate(zip(groups, values)):
            if value is None:
                continue
            buffer = self._value_tensors[index]
            buffer.copy_(value)
            # The optimizer may have replaced the group's entry (load_state_dict does).
            if group.get(key) is not buffer:
                group[key] = buffer
        self._last_value = [None if v is None else self._value_tensors[i] for i, v in enumerate(values)]

    def get_last_value(self):
        """The values most recently written, one per param group (None where not targeted).

        A new list: later steps do not change it (in tensor mode its entries are the
        0-d tensors updated in place, as the param groups hold them).
        """
        return list(self._last_value)

    # -- tensor values ----------------------------------------------------------------

    def enable_tensor_values(self, device=None, dtype: torch.dtype = torch.float32) -> "Scheduler":
        """Write 0-d tensors updated in place instead of Python floats, from now on.

        The step counter becomes an int64 tensor on ``device`` (the device of the first
        targeted parameter if not given) and every later value is computed there, with
        no host synchronisation, in ``dtype`` (float32 by default, as on the hardware;
        float64 for double-precision values).
        """
        if device is None:
            device = next(
                (p.device for g in self.optimizer.param_groups for p in g["params"]), torch.device("cpu")
            )
        keep_out_of_graphs(type(self))
        self._step_tensor = torch.tensor(self.last_epoch, dtype=torch.int64, device=device)
        self._value_tensors = [
            torch.zeros((), dtype=dtype, device=device) for _ in self.optimizer.param_groups
        ]
        self.update_last_value()  # also sets the last values to the buffers of the targeted groups
        return self

    @property
    def uses_tensor_values(self) -> bool:
        return self._step_tensor is not None

    def host_values(self) -> List[Optional[float]]:
        """The values at the current step as Python floats, one per param group (None where not targeted).

        What host stepping writes, computed on the host from the closed form: in tensor
        mode too, without reading the tensors (no synchronisation with their device).
        """
        if not self._fast_path:  # a subclass that computes its values itself: ask it
            values = self.get_last_value()
            return [None if v is None else float(v) for v in values]
        value = self.schedule(self.last_epoch)
        return [None if scale is None else value * scale for scale in self._group_scales()]

    def disable_tensor_values(self) -> "Scheduler":
        """Write Python floats again, from now on (undoes ``enable_tensor_values``).

        The value at the current step is written into the targeted groups as a float,
        exactly as host stepping would have written it; the step count is kept.
        """
        if self._step_tensor is not None:
            self._step_tensor = None
            self._value_tensors = None
            self.update_last_value()
        return self

    # -- state ------------------------------------------------------------------------

    def _hyperparameter_names(self) -> List[str]:
        parameters = inspect.signature(type(self).__init__).parameters
        return [name for name in parameters if name not in _NOT_HYPERPARAMETERS and name in self.__dict__]

    def state_dict(self) -> dict:
        """The scheduler's state, in the layout of ``cerebras.pytorch.optim`` schedulers."""
        state = {name: getattr(self, name) for name in self._hyperparameter_names()}
        state.update(
            param_group_tags=self.param_group_tags,
            _last_value=[v.detach().clone() if isinstance(v, torch.Tensor) else v for v in self._last_value],
            total_iters=self.total_iters,
            last_epoch=torch.tensor(self.last_epoch),
            _step_count=self._step_count,
            _get_called_within_step=False,
        )
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a state saved by this class or by its ``cerebras.pytorch`` counterpart.

        The hyperparameters of the saved scheduler replace this one's, and the value at
        the restored step is written back into the param groups (an optimizer's
        ``load_state_dict`` may have replaced the tensors of tensor mode).
        """
        if "last_epoch" not in state_dict:
            raise KeyError(
                f"{type(self).__name__}.load_state_dict: the state has no `last_epoch`; it was not "
                f"saved by a scheduler (keys: {sorted(state_dict)})."
            )
        for name in self._hyperparameter_names():
            if name in state_dict:
                setattr(self, name, state_dict[name])
        if "param_group_tags" in state_dict:
            tags = state_dict["param_group_tags"]
            self.param_group_tags = None if tags is None else set(tags)
            self._plan = None
        if "total_iters" in state_dict:
            self.total_iters = state_dict["total_iters"]
        self._validate_tags_apply()
        self._schedule = self._build_schedule()
        last_epoch = state_dict["last_epoch"]
        self.last_epoch = int(last_epoch.item() if isinstance(last_epoch, torch.Tensor) else last_epoch)
        if self._step_tensor is not None:
            self._step_tensor.fill_(self.last_epoch)
        self._step_count = max(self._step_count, 1)
        self.update_last_value()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(step={self.last_epoch}, key={self.param_group_key!r}, schedule={self.schedule!r})"
