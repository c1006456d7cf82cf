"""pytorch-accelerated's schedulers (``pytorch_accelerated.schedulers``) on wse's closed-form schedules.

Same class names, constructor arguments, defaults, methods and state-dict keys as
pytorch-accelerated 0.1.61. The base classes keep that library's contract (a scheduler
writes ``get_updated_values(num_updates)`` into one field of every param group, the
stateful one counts its own updates); the two concrete schedulers are thin bindings of
one ``wse.schedules`` value per param group, so ``scheduler.schedules[i](step)`` gives
group ``i``'s value at any step, as a float or, for a tensor step, as a tensor.

Like pytorch-accelerated's, these schedulers are stepped after every optimizer update,
and the value written at construction is the value of step 0 (the first ``step()``
writes step 0 again, the n-th writes step n-1).

The stateful schedulers are ``torch.optim.lr_scheduler.LRScheduler`` instances, so
Lightning's ``configure_optimizers`` and ``Accelerator.prepare`` take them, and the
closed-form ones can write 0-d tensors updated in place (``enable_tensor_values``), which
is how they run inside the graph under ``strategy="wse"``.

Where the published implementation contradicts its own documentation or crashes, wse
does what the documentation says (each case is named in the class docstring):

* ``StatefulSchedulerBase`` has a working ``state_dict``/``load_state_dict`` (all
  attributes but the optimizer), so the documented subclassing examples run;
* ``CosineLrScheduler`` anneals from the end of the warmup to the start of the
  cooldown, and a ``warmup_starting_lr_ratio`` warmup ends at the group's lr;
* ``WSDLrScheduler`` places exactly ``num_checkpoints`` checkpoints ending with the run,
  resumes at the saved step, keeps its continuation mode when loading a state, starts a
  warmup at ``warmup_starting_lr`` from construction, and does not divide by zero for
  ``lr_min=0`` or an empty decay phase.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from functools import partial
from numbers import Number
from typing import Callable, Iterable, List, Union

import torch

from .. import schedules as S
from ..schedules._backend import as_step
from ..schedules.warmup_stable_decay import decay_periods, geometric_checkpoints
from ..optim._binding import Hyperparameter
from ..optim._host_only import host_only, keep_out_of_graphs
from ._torch_api import TensorValues, TorchSchedulerAPI, resolve_device

__all__ = [
    "TrainerPlaceholderValues",
    "PlaceholderExpression",
    "SchedulerArgumentError",
    "fill_placeholders",
    "SchedulerBase",
    "StatefulSchedulerBase",
    "CosineLrScheduler",
    "WSDLrScheduler",
]


class SchedulerArgumentError(ValueError, AssertionError):
    """Invalid scheduler arguments or state.

    A ``ValueError``, as wse raises for bad arguments everywhere, and an
    ``AssertionError``, which pytorch-accelerated raises for most of the same checks (it
    asserts them): code written against either keeps catching it.
    """


# -- trainer placeholders ---------------------------------------------------------------


class _Arithmetic:
    """The arithmetic users write on placeholders (``NUM_EPOCHS + 2``, ``5 * NUM_UPDATE_STEPS_PER_EPOCH``)."""

    def _then(self, operation: str, operand, reflected: bool = False):
        raise NotImplementedError

    def __add__(self, other):
        return self._then("+", other)

    def __radd__(self, other):
        return self._then("+", other, reflected=True)

    def __sub__(self, other):
        return self._then("-", other)

    def __rsub__(self, other):
        return self._then("-", other, reflected=True)

    def __mul__(self, other):
        return self._then("*", other)

    def __rmul__(self, other):
        return self._then("*", other, reflected=True)

    def __floordiv__(self, other):
        return self._then("//", other)

    def __rfloordiv__(self, other):
        return self._then("//", other, reflected=True)

    def __truediv__(self, other):
        return self._then("/", other)

    def __rtruediv__(self, other):
        return self._then("/", other, reflected=True)


_OPERATIONS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "//": lambda a, b: a // b,
    "/": lambda a, b: a / b,
}


def _check_operand(operation: str, operand) -> None:
    if isinstance(operand, bool) or not isinstance(operand, Number):
        raise TypeError(
            f"a trainer placeholder can be combined with numbers only, got {operation} {operand!r} "
            f"({type(operand).__name__})."
        )


class TrainerPlaceholderValues(_Arithmetic, Enum):
    """Run values that a trainer fills in when it builds the scheduler.

    ``create_scheduler_fn`` uses them as defaults for the numbers only known once the
    data loaders exist. Arithmetic with numbers gives a placeholder expression, resolved
    with the placeholder: ``NUM_EPOCHS + 2``, ``NUM_UPDATE_STEPS_PER_EPOCH * 5`` (five
    epochs of warmup), ``TRAIN_DATALOADER_LEN // 10``. ``fill_placeholders`` replaces
    them with the run values.

    pytorch-accelerated 0.1.61 supports ``+`` and ``*`` with the placeholder on the
    left, and evaluates the chain as text, so ``(NUM_EPOCHS + 1) * 2`` becomes
    ``num_epochs + 1 * 2``. Here every operation applies in the order Python evaluated
    it, on either side, and ``-``, ``//`` and ``/`` work too.
    """

    NUM_EPOCHS = "num_epochs"
    NUM_UPDATE_STEPS_PER_EPOCH = "num_update_steps_per_epoch"
    PER_PROCESS_NUM_UPDATE_STEPS_PER_EPOCH = "num_local_update_steps_per_epoch"
    TRAIN_DATALOADER_LEN = "train_dataloader_len"
    EVAL_DATALOADER_LEN = "eval_dataloader_len"

    @classmethod
    def placeholder_set(cls):
        """The names of the placeholders."""
        return {placeholder.name for placeholder in cls}

    def _then(self, operation, operand, reflected=False):
        return PlaceholderExpression(self, ())._then(operation, operand, reflected)

    @property
    def placeholder(self) -> "TrainerPlaceholderValues":
        return self

    def resolve(self, run_values: dict):
        return run_values[self.value]


@dataclass(frozen=True)
class PlaceholderExpression(_Arithmetic):
    """A placeholder with arithmetic applied to it, resolved when the placeholder is.

    ``operations`` are ``(operation, operand, reflected)`` in the order they apply;
    ``reflected`` puts the operand on the left (``10 - NUM_EPOCHS``).
    """

    placeholder: TrainerPlaceholderValues
    operations: tuple

    def _then(self, operation, operand, reflected=False):
        _check_operand(operation, operand)
        return PlaceholderExpression(self.placeholder, self.operations + ((operation, operand, reflected),))

    def resolve(self, run_values: dict):
        value = self.placeholder.resolve(run_values)
        for operation, operand, reflected in self.operations:
            apply = _OPERATIONS[operation]
            value = apply(operand, value) if reflected else apply(value, operand)
        return value

    def __str__(self):
        text = self.placeholder.name
        for operation, operand, reflected in self.operations:
            text = f"({operand} {operation} {text})" if reflected else f"({text} {operation} {operand})"
        return text


_PLACEHOLDER_TYPES = (TrainerPlaceholderValues, PlaceholderExpression)


def fill_placeholders(create_scheduler_fn: partial, **run_values) -> partial:
    """Return ``create_scheduler_fn`` with its trainer placeholders replaced by run values.

    ``run_values`` are keyed by the placeholders' values: ``num_epochs``,
    ``num_update_steps_per_epoch``, ``num_local_update_steps_per_epoch``,
    ``train_dataloader_len`` and ``eval_dataloader_len``::

        fn = CosineLrScheduler.create_scheduler_fn(num_warmup_epochs=2)
        scheduler = fill_placeholders(fn, num_epochs=10, num_update_steps_per_epoch=500)(optimizer)
    """
    if not isinstance(create_scheduler_fn, partial):
        raise TypeError(
            f"fill_placeholders expects the functools.partial returned by create_scheduler_fn, "
            f"got {type(create_scheduler_fn).__name__}."
        )
    known = {p.value for p in TrainerPlaceholderValues}
    unknown = sorted(set(run_values) - known)
    if unknown:
        raise TypeError(f"fill_placeholders: unknown run values {unknown}; expected some of {sorted(known)}.")
    keywords = dict(create_scheduler_fn.keywords)
    for name, value in keywords.items():
        if isinstance(value, _PLACEHOLDER_TYPES):
            placeholder = value.placeholder
            if placeholder.value not in run_values:
                raise TypeError(
                    f"fill_placeholders: `{name}` is {placeholder} but no `{placeholder.value}` was "
                    f"given; pass {placeholder.value}=<number>."
                )
            keywords[name] = value.resolve(run_values)
    return partial(create_scheduler_fn.func, *create_scheduler_fn.args, **keywords)


def _require_filled(owner: str, **values) -> None:
    for name, value in values.items():
        if isinstance(value, _PLACEHOLDER_TYPES):
            raise TypeError(
                f"{owner}: `{name}` is the placeholder {value}, which a trainer fills in. Pass a "
                f"number, e.g. create_scheduler_fn(...)(optimizer, {name}=...), or use "
                f"wse.compat.pytorch_accelerated.fill_placeholders."
            )


# -- argument checks --------------------------------------------------------------------


def _require_steps(owner: str, minimum: int, **values) -> None:
    """Whole numbers of steps or epochs, at least ``minimum``."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, Number) or value != int(value):
            raise TypeError(f"{owner}: `{name}` must be a whole number, got {value!r}.")
        if value < minimum:
            raise SchedulerArgumentError(f"{owner}: `{name}` must be >= {minimum}, got {value!r}.")


def _require_number(owner: str, low: float = -math.inf, high: float = math.inf, **values) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, Number) or not math.isfinite(value):
            raise TypeError(f"{owner}: `{name}` must be a finite number, got {value!r}.")
        if not low <= value <= high:
            raise SchedulerArgumentError(f"{owner}: `{name}` must be in [{low}, {high}], got {value!r}.")


def _initial_values(optimizer, field: str, owner: str) -> List:
    """The values a scheduler of ``field`` starts from: ``initial_<field>`` if set, else ``<field>``."""
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, (list, tuple)) or not groups:
        raise TypeError(
            f"{owner} needs an optimizer with a non-empty `param_groups` list (a torch.optim.Optimizer), "
            f"got {type(optimizer).__name__}."
        )
    missing = [i for i, group in enumerate(groups) if field not in group]
    if missing:
        raise KeyError(
            f"{owner}: `{field}` missing from param_groups{missing}; the scheduled field must be set in "
            f"every param group (pass it to the optimizer or choose another `param_group_field`)."
        )
    return [group.get(f"initial_{field}", group[field]) for group in groups]


# -- the base classes -------------------------------------------------------------------


class SchedulerBase(ABC):
    """Schedules one field of every param group from the number of optimizer updates.

    Stateless: call ``step_update(num_updates)`` after each optimizer update with the
    count of updates so far. Construction records each group's starting value under
    ``initial_<field>`` (kept if already there), exposes them as ``base_lr_values``
    (whatever the field), and writes them into the groups.

    Subclasses implement ``get_updated_values(num_updates)``: one value for every
    group, a list with a value per group, or None to leave the groups untouched.
    """

    # Attributes that are caches or wse's bookkeeping, never state.
    _not_state = frozenset({"optimizer", "_step_count", "_tensor_values"})
    _tensor_values = None

    def __init__(self, optimizer: torch.optim.Optimizer, param_group_field: str = "lr"):
        base_values = _initial_values(optimizer, param_group_field, type(self).__name__)
        self.optimizer = optimizer
        self.param_group_field = param_group_field
        self._initial_param_group_field = f"initial_{param_group_field}"
        for group in optimizer.param_groups:
            group.setdefault(self._initial_param_group_field, group[param_group_field])
        self.base_lr_values = base_values
        self._update_param_groups(self.base_lr_values)

    @abstractmethod
    def get_updated_values(self, num_updates: int) -> Union[None, Number, Iterable[Number]]:
        """The values of the field after ``num_updates`` updates (see the class docstring)."""

    def step_update(self, num_updates: int) -> None:
        """Write the values for ``num_updates`` optimizer updates into the param groups."""
        values = self.get_updated_values(num_updates)
        if values is not None:
            self._update_param_groups(values)

    def _update_param_groups(self, values) -> None:
        groups = self.optimizer.param_groups
        if not isinstance(values, (list, tuple)):
            values = [values] * len(groups)
        elif len(values) != len(groups):
            raise SchedulerArgumentError(
                f"{type(self).__name__}: got {len(values)} values for {len(groups)} param groups; return "
                f"one value per group, or a single value for all of them."
            )
        tensors = self._tensor_values
        if tensors is not None:
            for index, (group, value) in enumerate(zip(groups, values)):
                tensors.write(group, index, self.param_group_field, value)
            return
        for group, value in zip(groups, values):
            group[self.param_group_field] = value

    def state_dict(self) -> dict:
        """Every attribute except the optimizer (save that separately)."""
        return {key: value for key, value in self.__dict__.items() if key not in self._not_state}

    def load_state_dict(self, state_dict: dict) -> None:
        """Set the attributes saved by ``state_dict``."""
        self.__dict__.update(state_dict)


class StatefulSchedulerBase(SchedulerBase, TorchSchedulerAPI, ABC):
    """A ``SchedulerBase`` that counts its own updates: call ``step()`` after each one.

    The first ``step()`` writes the values for 0 previous updates. ``state_dict``
    saves every attribute but the optimizer, the update count included; the published
    base leaves both abstract, so its documented subclassing examples (which define only
    ``get_updated_values``) cannot be instantiated there.

    It is a ``torch.optim.lr_scheduler.LRScheduler``, so Lightning's
    ``configure_optimizers`` and ``Accelerator.prepare`` take it as they take torch's
    schedulers; ``last_epoch`` is the update count.
    """

    def __init__(self, optimizer, param_group_field: str = "lr"):
        super().__init__(optimizer=optimizer, param_group_field=param_group_field)
        self._num_updates = -1
        self._step_count = 1

    @property
    def last_epoch(self) -> int:
        """The number of the last update stepped (-1 before the first ``step()``)."""
        return self._num_updates

    def step(self) -> None:
        """Count one more update and write its values into the param groups."""
        self._num_updates += 1
        self._step_count += 1
        self.step_update(self._num_updates)


class _ClosedFormLrScheduler(StatefulSchedulerBase):
    """A stateful LR scheduler whose values are one closed-form schedule per param group."""

    _not_state = frozenset({"optimizer", "_plan"})
    # Attributes the schedules are built from; setting one rebuilds them on next use.
    _schedule_inputs: frozenset = frozenset()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Setting an input clears the cached schedules; the per-step counter stays a plain attribute.
        for name in cls._schedule_inputs | {"base_lr_values"}:
            setattr(cls, name, Hyperparameter(name, invalidates="_plan"))

    @abstractmethod
    def _build_plan(self):
        """What ``get_updated_values`` evaluates, built from the schedule inputs (cached)."""

    def _get_plan(self):
        plan = self.__dict__.get("_plan")
        if plan is None:
            plan = self._plan = self._build_plan()
        return plan

    @property
    def schedules(self) -> List[S.Schedule]:
        """Each param group's learning rate as a function of the number of updates."""
        return self._get_plan()

    def get_updated_values(self, num_updates):
        """Each group's learning rate after ``num_updates`` updates (tensors for a tensor step)."""
        t, m = as_step(num_updates)
        return [schedule.evaluate(t, m) for schedule in self.schedules]

    # -- tensor values ------------------------------------------------------------------

    def enable_tensor_values(self, device=None, dtype: torch.dtype = torch.float32) -> "_ClosedFormLrScheduler":
        """Write 0-d tensors updated in place instead of Python floats, from now on.

        Each group's learning rate becomes a tensor on ``device`` (the first parameter's
        by default) holding the value it has now, and every ``step()`` computes the next
        one there from a step tensor, with no host synchronisation: a compiled optimizer
        step that reads it is compiled once. The protocol of the ``wse.optim``
        schedulers, which the Lightning strategy and ``wse.device`` switch on.
        """
        keep_out_of_graphs(type(self))
        tensors = TensorValues(self._num_updates, (self.param_group_field,), resolve_device(self.optimizer, device), dtype)
        tensors.adopt(self.optimizer.param_groups)
        self._tensor_values = tensors
        return self

    def disable_tensor_values(self) -> "_ClosedFormLrScheduler":
        """Write Python floats again (the current values, as numbers); the update count is kept."""
        tensors, self._tensor_values = self._tensor_values, None
        if tensors is not None:
            field = self.param_group_field
            for group in self.optimizer.param_groups:
                if isinstance(group.get(field), torch.Tensor):
                    group[field] = group[field].item()
        return self

    @property
    def uses_tensor_values(self) -> bool:
        return self._tensor_values is not None

    def step(self) -> None:
        """Count one more update and write its values into the param groups."""
        tensors = self._tensor_values
        if tensors is None:
            return super().step()
        # Only tensor operations here, so that a compiled step containing this one is the
        # same graph at every step; the Python counters advance outside it.
        self._count_update_on_host()
        tensors.step.add_(1)
        step, field = tensors.step_value(), self.param_group_field
        for index, (group, schedule) in enumerate(zip(self.optimizer.param_groups, self.schedules)):
            tensors.write(group, index, field, schedule(step))

    @host_only
    def _count_update_on_host(self) -> None:
        self._num_updates += 1
        self._step_count += 1
        self._note_update(self._num_updates)

    def _note_update(self, num_updates: int) -> None:
        """Host-side bookkeeping of an update, for subclasses that keep some."""

    def _sync_tensor_values(self) -> None:
        """After a state was loaded: the step tensor and the groups' tensors at the loaded count."""
        tensors = self._tensor_values
        if tensors is None:
            return
        tensors.step.fill_(self._num_updates)
        if self._num_updates >= 0:
            step = tensors.step_value()
            for index, (group, schedule) in enumerate(zip(self.optimizer.param_groups, self.schedules)):
                tensors.write(group, index, self.param_group_field, schedule(step))


# -- cosine -----------------------------------------------------------------------------


class CosineLrScheduler(_ClosedFormLrScheduler):
    """Cosine annealing (SGDR without restarts) with optional warmup, cooldown and k-decay.

    With ``T`` total, ``W`` warmup and ``C`` cooldown updates (epochs times
    ``num_update_steps_per_epoch``) and ``base`` a group's learning rate:

    * updates ``[0, W)``: linear from the warmup start (``warmup_starting_lr``, or
      ``warmup_starting_lr_ratio * base``) towards ``base``;
    * updates ``[W, T - C)``: ``min + (base - min) * (1 + cos(pi * s**k / L**k)) / 2``
      with ``s`` the updates since the warmup, ``L = T - W - C`` and ``min`` being
      ``lr_min`` or ``min_lr_ratio * base``;
    * from ``T - C`` on: ``min``.

    Two documented behaviours that pytorch-accelerated 0.1.61 does not follow: it ends
    the cosine at update ``T - W - C`` (so a warmup lengthens the cooldown by ``W`` and
    cuts the cosine short with a jump to the minimum), and with
    ``warmup_starting_lr_ratio`` it steps by ``(base - warmup_starting_lr) / W`` (so
    the warmup overshoots ``base``). Here the cosine fills the time between warmup and
    cooldown and every warmup ends at ``base``; without a warmup the numbers are the same.
    """

    _schedule_inputs = frozenset(
        {"total_iterations", "lr_min_ratio", "lr_min", "warmup_iterations", "warmup_lr_init",
         "warmup_lr_ratio", "k_decay", "num_cooldown_iterations"}
    )
    _state_keys = (
        "total_iterations", "lr_min_ratio", "lr_min", "warmup_iterations", "warmup_lr_init",
        "warmup_lr_ratio", "k_decay", "num_cooldown_iterations",
    )

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_num_epochs: int,
        num_update_steps_per_epoch: int,
        k_decay=1.0,
        lr_min: float = 1e-6,
        min_lr_ratio=None,
        num_warmup_epochs: int = 0,
        warmup_starting_lr=1e-6,
        warmup_starting_lr_ratio=None,
        num_cooldown_epochs=0,
    ):
        owner = type(self).__name__
        _require_filled(owner, total_num_epochs=total_num_epochs, num_update_steps_per_epoch=num_update_steps_per_epoch)
        _require_steps(owner, 1, total_num_epochs=total_num_epochs, num_update_steps_per_epoch=num_update_steps_per_epoch)
        _require_steps(owner, 0, num_warmup_epochs=num_warmup_epochs, num_cooldown_epochs=num_cooldown_epochs)
        settings = dict(
            total_iterations=int(total_num_epochs * num_update_steps_per_epoch),
            lr_min_ratio=min_lr_ratio,
            lr_min=lr_min,
            warmup_iterations=int(num_warmup_epochs * num_update_steps_per_epoch),
            warmup_lr_init=warmup_starting_lr,
            warmup_lr_ratio=warmup_starting_lr_ratio,
            k_decay=k_decay,
            num_cooldown_iterations=int(num_cooldown_epochs * num_update_steps_per_epoch),
        )
        self._check_settings(settings, _initial_values(optimizer, "lr", owner), epochs=True)
        super().__init__(optimizer)
        for name, value in settings.items():
            setattr(self, name, value)
        if self.warmup_iterations:
            self._update_param_groups(self.get_updated_values(0))

    @classmethod
    def _check_settings(cls, settings: dict, base_values, epochs: bool = False) -> None:
        owner = cls.__name__
        _require_steps(owner, 1, total_iterations=settings["total_iterations"])
        _require_steps(owner, 0, warmup_iterations=settings["warmup_iterations"],
                       num_cooldown_iterations=settings["num_cooldown_iterations"])
        _require_number(owner, low=0.0, lr_min=settings["lr_min"], warmup_starting_lr=settings["warmup_lr_init"])
        _require_number(owner, low=0.0, high=1.0, **{
            name: settings[key] for name, key in (("min_lr_ratio", "lr_min_ratio"), ("warmup_starting_lr_ratio", "warmup_lr_ratio"))
            if settings[key] is not None
        })
        _require_number(owner, k_decay=settings["k_decay"])
        if settings["k_decay"] <= 0:
            raise SchedulerArgumentError(f"{owner}: `k_decay` must be > 0, got {settings['k_decay']!r}.")
        total, warmup, cooldown = (settings[k] for k in ("total_iterations", "warmup_iterations", "num_cooldown_iterations"))
        if warmup + cooldown >= total:
            unit = "epochs" if epochs else "updates"
            raise SchedulerArgumentError(
                f"{owner}: warmup ({warmup} updates) and cooldown ({cooldown} updates) leave no updates for the "
                f"cosine phase out of {total}; the total includes both, so make the number of warmup plus "
                f"cooldown {unit} smaller than the total."
            )
        if settings["lr_min_ratio"] is None:
            for index, base in enumerate(base_values):
                if settings["lr_min"] > base:
                    raise SchedulerArgumentError(
                        f"{owner}: `lr_min` ({settings['lr_min']}) is above the learning rate {base} of param "
                        f"group {index}; lower `lr_min` or give a per-group `min_lr_ratio`."
                    )

    def _build_plan(self):
        return [self._build_schedule(base_lr) for base_lr in self.base_lr_values]

    def _build_schedule(self, base_lr: float) -> S.Schedule:
        end = self.lr_min_ratio * base_lr if self.lr_min_ratio is not None else self.lr_min
        start = self.warmup_lr_ratio * base_lr if self.warmup_lr_ratio is not None else self.warmup_lr_init
        warmup, cooldown_start = self.warmup_iterations, self.total_iterations - self.num_cooldown_iterations
        cosine = S.Anneal(base_lr, end, cooldown_start - warmup, "cosine", k_decay=self.k_decay)
        if warmup:
            parts, milestones = (S.Ramp(start, base_lr, warmup), cosine, S.Constant(end)), (warmup, cooldown_start)
        else:
            parts, milestones = (cosine, S.Constant(end)), (cooldown_start,)
        return S.Sequential(parts, milestones)

    @classmethod
    def create_scheduler_fn(
        cls,
        total_num_epochs: int = TrainerPlaceholderValues.NUM_EPOCHS,
        num_update_steps_per_epoch: int = TrainerPlaceholderValues.NUM_UPDATE_STEPS_PER_EPOCH,
        k_decay=1.0,
        lr_min: float = 1e-6,
        min_lr_ratio=None,
        num_warmup_epochs: int = 0,
        warmup_starting_lr=1e-6,
        warmup_starting_lr_ratio=None,
        num_cooldown_epochs=0,
    ) -> Callable:
        """A function of the optimizer that builds this scheduler; the run values default to placeholders."""
        return partial(
            cls,
            total_num_epochs=total_num_epochs,
            num_update_steps_per_epoch=num_update_steps_per_epoch,
            lr_min=lr_min,
            min_lr_ratio=min_lr_ratio,
            k_decay=k_decay,
            num_warmup_epochs=num_warmup_epochs,
            warmup_starting_lr=warmup_starting_lr,
            warmup_starting_lr_ratio=warmup_starting_lr_ratio,
            num_cooldown_epochs=num_cooldown_epochs,
        )

    def state_dict(self) -> dict:
        """The settings and the update count, under pytorch-accelerated's keys."""
        state = {key: getattr(self, key) for key in self._state_keys}
        state["num_updates"] = self._num_updates
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the settings and the update count saved by ``state_dict``."""
        missing = [key for key in self._state_keys + ("num_updates",) if key not in state_dict]
        if missing:
            raise KeyError(f"{type(self).__name__}.load_state_dict: the state lacks {missing}.")
        settings = {key: state_dict[key] for key in self._state_keys}
        self._check_settings(settings, self.base_lr_values)
        for name, value in settings.items():
            setattr(self, name, value)
        self._num_updates = state_dict["num_updates"]
        self._sync_tensor_values()


# -- warmup-stable-decay ----------------------------------------------------------------


class WSDLrScheduler(_ClosedFormLrScheduler):
    """Warmup-Stable-Decay with a decay before each of ``num_checkpoints`` checkpoints.

    The learning rate warms up linearly from ``warmup_starting_lr`` to each group's lr
    over ``num_warmup_steps``, stays there, and in the last ``decay_phase_ratio`` of
    every checkpoint period decays to ``lr_min * lr`` (``lr_min`` is a fraction of the
    group's lr) by the sqrt formula ``lr_min + (1 - lr_min)(1 - sqrt(t))``
    (``use_inverse_sqrt_decay=True``) or the WSD paper's ``1 / (t (1/lr_min - 1) + 1)``;
    each period starts again at the stable lr. See ``wse.schedules.WarmupStableDecay``.

    Checkpoints are spaced geometrically, each twice the previous, the last at the end of
    the run: 2 checkpoints over 100K steps are [50K, 100K], 4 over 200K are [25K, 50K,
    100K, 200K] (the first is ``total_steps // 2 ** (num_checkpoints - 1)``).
    ``num_warmup_steps=None`` warms up over 1% of the steps (pytorch-accelerated's docstring
    says 10%; its code and its own tests use 1%, and so does this).

    A continuation run (``is_continuation_from_checkpoint=True``) loads the state of the
    previous run with ``load_state_dict``, keeps its own ``total_steps``, starts a fresh
    stable phase without warmup at update 0 and spaces its checkpoints over its new length.

    Where this differs from pytorch-accelerated 0.1.61, which contradicts its documentation
    or crashes: that version places the first of several checkpoints at a quarter of the
    run and stops at the end, so 2 checkpoints land at [25%, 50%] (the second half of the
    run is held at the minimum) and 4 checkpoints become 3; it does not save the update
    count, so a resumed run starts again from update 0 (this state dict adds
    ``num_updates``; states without it keep the current count, as before); loading a
    state saved by a regular run switches a continuation scheduler back to regular mode,
    warmup included; it never records ``previous_checkpoint_step`` in continuation mode;
    it divides by zero for ``lr_min=0`` with the inverse-proportional formula and past
    the end of a period with no decay steps (here: the limits, 0 and ``lr_min * lr``);
    and with a warmup it leaves the groups' lr in place at construction, so the first
    optimizer update runs at the full lr (here, as in ``CosineLrScheduler``, it runs at
    ``warmup_starting_lr``).
    """

    _schedule_inputs = frozenset(
        {"total_steps", "num_warmup_steps", "decay_phase_ratio", "lr_min", "warmup_starting_lr",
         "use_inverse_sqrt_decay", "num_checkpoints", "checkpoint_steps", "is_continuation_from_checkpoint"}
    )
    _state_keys = (
        "param_group_field", "base_lr_values", "total_steps", "num_warmup_steps", "decay_phase_ratio", "lr_min",
        "warmup_starting_lr", "use_inverse_sqrt_decay", "num_checkpoints", "checkpoint_steps",
        "is_continuation_from_checkpoint", "previous_checkpoint_step", "checkpoint_decay_info",
    )
    # Largest decay ratio for which the decays of geometric periods cannot overlap.
    max_multi_checkpoint_decay_ratio = 1 / 3

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        num_epochs: int = None,
        num_update_steps_per_epoch: int = None,
        total_steps: int = None,
        num_warmup_steps: int = 0,
        decay_phase_ratio: float = 0.1,
        lr_min: float = 1e-6,
        warmup_starting_lr: float = 1e-6,
        use_inverse_sqrt_decay: bool = True,
        num_checkpoints: int = 1,
        is_continuation_from_checkpoint: bool = False,
    ):
        owner = type(self).__name__
        _require_filled(owner, num_epochs=num_epochs, num_update_steps_per_epoch=num_update_steps_per_epoch,
                        total_steps=total_steps, num_warmup_steps=num_warmup_steps)
        if num_epochs is not None and num_update_steps_per_epoch is not None:
            if total_steps is not None:
                raise SchedulerArgumentError(
                    f"{owner}: give either `num_epochs` and `num_update_steps_per_epoch`, or `total_steps`, not all three."
                )
            _require_steps(owner, 1, num_epochs=num_epochs, num_update_steps_per_epoch=num_update_steps_per_epoch)
            total_steps = num_epochs * num_update_steps_per_epoch
        if total_steps is None:
            raise SchedulerArgumentError(
                f"{owner}: the length of the run is unknown; give `total_steps`, or both `num_epochs` and "
                f"`num_update_steps_per_epoch`."
            )
        _require_steps(owner, 1, total_steps=total_steps)
        if num_warmup_steps is None:
            num_warmup_steps = int(0.01 * total_steps)
        settings = dict(
            total_steps=int(total_steps),
            num_warmup_steps=num_warmup_steps,
            decay_phase_ratio=decay_phase_ratio,
            lr_min=lr_min,
            warmup_starting_lr=warmup_starting_lr,
            use_inverse_sqrt_decay=use_inverse_sqrt_decay,
            num_checkpoints=num_checkpoints,
        )
        self._check_settings(settings, _initial_values(optimizer, "lr", owner))
        super().__init__(optimizer)
        for name, value in settings.items():
            setattr(self, name, value)
        self.is_continuation_from_checkpoint = bool(is_continuation_from_checkpoint)
        self.previous_checkpoint_step = None
        self._derive_checkpoints()
        if self.num_warmup_steps and not self.is_continuation_from_checkpoint:
            # The first optimizer update runs before the first step(): start it warm.
            self._update_param_groups([schedule(0) for schedule in self.schedules])

    @classmethod
    def _check_settings(cls, settings: dict, base_values) -> None:
        owner = cls.__name__
        _require_steps(owner, 1, total_steps=settings["total_steps"], num_checkpoints=settings["num_checkpoints"])
        _require_steps(owner, 0, num_warmup_steps=settings["num_warmup_steps"])
        _require_number(owner, low=0.0, high=1.0, decay_phase_ratio=settings["decay_phase_ratio"], lr_min=settings["lr_min"])
        _require_number(owner, low=0.0, warmup_starting_lr=settings["warmup_starting_lr"])
        if settings["warmup_starting_lr"] > max(base_values):
            raise SchedulerArgumentError(
                f"{owner}: `warmup_starting_lr` ({settings['warmup_starting_lr']}) exceeds the largest param-group "
                f"learning rate ({max(base_values)}); the warmup must rise to the group's lr."
            )
        ratio, count = settings["decay_phase_ratio"], settings["num_checkpoints"]
        if count > 1 and ratio > cls.max_multi_checkpoint_decay_ratio:
            raise SchedulerArgumentError(
                f"{owner}: `decay_phase_ratio` {ratio} is too large for {count} checkpoints: the decay phases "
                f"of geometrically spaced periods may overlap above {cls.max_multi_checkpoint_decay_ratio:.2f}."
            )
        try:
            geometric_checkpoints(settings["total_steps"], count)
        except ValueError as error:
            raise SchedulerArgumentError(f"{owner}: {error}") from None

    def _derive_checkpoints(self) -> None:
        self.checkpoint_steps = geometric_checkpoints(self.total_steps, self.num_checkpoints)
        self.checkpoint_decay_info = self._calculate_decay_info()

    def _calculate_decay_info(self) -> List[dict]:
        return [period._asdict() for period in decay_periods(self.checkpoint_steps, self.decay_phase_ratio)]

    def _build_plan(self):
        warmup = 0 if self.is_continuation_from_checkpoint else self.num_warmup_steps
        shape = "minus_sqrt" if self.use_inverse_sqrt_decay else "inverse_proportional"
        schedules = [
            S.WarmupStableDecay(base_lr, tuple(self.checkpoint_steps), self.decay_phase_ratio, self.lr_min, shape,
                                warmup, self.warmup_starting_lr)
            for base_lr in self.base_lr_values
        ]
        # The last update of each period's stable phase (pytorch-accelerated's
        # pre-decay step), for periods whose stable phase is not empty.
        pre_decay = {
            p.pre_decay_step - 1
            for p in decay_periods(self.checkpoint_steps, self.decay_phase_ratio)
            if p.pre_decay_step - 1 >= p.period_start
        }
        return schedules, frozenset(pre_decay), warmup

    @property
    def schedules(self) -> List[S.Schedule]:
        return self._get_plan()[0]

    def get_updated_values(self, num_updates):
        """Each group's learning rate after ``num_updates`` updates; records the pre-decay step."""
        schedules = self._get_plan()[0]
        t, m = as_step(num_updates)
        if not m.is_tensor:
            self._note_update(num_updates)
        return [schedule.evaluate(t, m) for schedule in schedules]

    def _note_update(self, num_updates: int) -> None:
        _, pre_decay, warmup = self._get_plan()
        if num_updates >= warmup and num_updates in pre_decay:
            self.previous_checkpoint_step = num_updates

    # -- checkpoint information ---------------------------------------------------------

    def get_checkpoint_steps(self) -> List[int]:
        """The steps at which checkpoints occur (for training-loop coordination)."""
        return self.checkpoint_steps

    def get_decay_info(self) -> List[dict]:
        """Per period: ``period_start``, ``period_end``, ``decay_steps``, ``pre_decay_step``."""
        return self.checkpoint_decay_info

    def get_phase_info(self, num_updates: int) -> dict:
        """The period that ``num_updates`` falls in (its end included); the last one after the run."""
        for info in self.checkpoint_decay_info:
            if info["period_end"] >= num_updates:
                return info
        return self.checkpoint_decay_info[-1]

    def decay_periods(self) -> List:
        """The checkpoint periods as ``wse.schedules.DecayPeriod`` tuples: the WSD decay-period protocol.

        The same numbers as ``get_decay_info()``; steps count optimizer updates, as
        ``get_current_step() + 1`` does.
        """
        return decay_periods(self.checkpoint_steps, self.decay_phase_ratio)

    def get_current_step(self) -> int:
        """The number of updates completed, as counted by ``step()``."""
        return self._num_updates

    def get_current_phase_info(self) -> dict:
        """``get_phase_info`` at the current step."""
        return self.get_phase_info(self._num_updates)

    def _get_checkpoint_info(self, num_updates: int):
        """(period length, updates into the period) of the period the learning rate follows.

        Past the last checkpoint the first period is reported with the updates counted
        from 0, which places the step after that period's decay (the floor).
        """
        for start, end in zip([0] + list(self.checkpoint_steps), self.checkpoint_steps):
            if num_updates < end:
                return end - start, num_updates - start
        return self.checkpoint_steps[0], num_updates

    # -- state --------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """pytorch-accelerated's keys (all public attributes but the optimizer), plus ``num_updates``."""
        state = {}
        for key in self._state_keys:
            value = getattr(self, key)
            if key == "checkpoint_decay_info":
                value = [dict(info) for info in value]
            elif isinstance(value, list):
                value = list(value)
            state[key] = value
        state["num_updates"] = self._num_updates
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a saved state; in continuation mode, start a fresh run from it.

        A regular scheduler takes every saved setting and the saved update count.
        A continuation scheduler takes the saved settings but keeps its own
        ``total_steps``, its continuation mode and its update count, forgets the
        previous pre-decay step and spaces its checkpoints over its own length.
        Checkpoint steps and decay information are always recomputed from the settings.
        """
        known = [key for key in self._state_keys if key in state_dict]
        merged = {key: getattr(self, key) for key in self._state_keys}
        merged.update({key: state_dict[key] for key in known})
        continuation = self.is_continuation_from_checkpoint
        if continuation:
            merged["total_steps"] = self.total_steps
            merged["is_continuation_from_checkpoint"] = True
            merged["previous_checkpoint_step"] = None
        base_values = merged["base_lr_values"]
        if not isinstance(base_values, (list, tuple)) or len(base_values) != len(self.optimizer.param_groups):
            raise SchedulerArgumentError(
                f"{type(self).__name__}.load_state_dict: the state has base_lr_values for "
                f"{len(base_values) if isinstance(base_values, (list, tuple)) else base_values!r} param groups, "
                f"the optimizer has {len(self.optimizer.param_groups)}."
            )
        self._check_settings(merged, base_values)
        for key in self._state_keys:
            if key not in ("checkpoint_steps", "checkpoint_decay_info"):
                setattr(self, key, merged[key])
        self.base_lr_values = list(base_values)
        self._derive_checkpoints()
        if not continuation and "num_updates" in state_dict:
            self._num_updates = state_dict["num_updates"]
        self._sync_tensor_values()

    @classmethod
    def create_scheduler_fn(
        cls,
        total_num_epochs: int = TrainerPlaceholderValues.NUM_EPOCHS,
        num_update_steps_per_epoch: int = TrainerPlaceholderValues.PER_PROCESS_NUM_UPDATE_STEPS_PER_EPOCH,
        num_warmup_epochs: int = None,
        decay_phase_ratio: float = 0.1,
        lr_min: float = 1e-6,
        warmup_starting_lr: float = 1e-6,
        use_inverse_sqrt_decay: bool = True,
        num_checkpoints: int = 1,
        is_continuation_from_checkpoint: bool = False,
    ) -> Callable:
        """A function of the optimizer that builds this scheduler; the run values default to placeholders.

        ``num_warmup_epochs`` counts in epochs of ``num_update_steps_per_epoch`` updates
        (a placeholder product until the trainer fills it in); None warms up over 1% of
        the run.
        """
        num_warmup_steps = None if num_warmup_epochs is None else num_update_steps_per_epoch * num_warmup_epochs
        return partial(
            cls,
            num_epochs=total_num_epochs,
            num_update_steps_per_epoch=num_update_steps_per_epoch,
            num_warmup_steps=num_warmup_steps,
            decay_phase_ratio=decay_phase_ratio,
            lr_min=lr_min,
            warmup_starting_lr=warmup_starting_lr,
            use_inverse_sqrt_decay=use_inverse_sqrt_decay,
            num_checkpoints=num_checkpoints,
            is_continuation_from_checkpoint=is_continuation_from_checkpoint,
        )
