"""Building schedulers from the ``configure_scheduler`` format: ``{ClassName: {arguments}}``.

A config names one scheduler class of ``wse.optim.lr_scheduler``,
``wse.optim.weight_decay_scheduler`` or ``wse.optim.scheduler`` and gives its
arguments. Schedulers that take schedulers nest their configs: a list for
``schedulers`` (``SequentialLR``, ``ChainedLR``, ...), a single config for
``scheduler`` (``ScalePerParamLR``). For the sequential ones ``milestones`` are computed
from each child's ``total_iters``.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from itertools import accumulate
from typing import Any, Dict, List, Optional, Tuple

from ..schedules import base as checks
from . import lr_scheduler, scheduler, weight_decay_scheduler
from ._binding import Scheduler
from ._config_errors import SchedulerConfigError, close_matches, did_you_mean, join_location
from ._config_signature import check_arguments, construct, takes_argument
from ._generic import SequentialScheduler

SCHEDULER_MODULES = (lr_scheduler, weight_decay_scheduler, scheduler)

_NOT_GIVEN = object()


def _collect_classes() -> Dict[str, type]:
    found: Dict[str, type] = {}
    for module in SCHEDULER_MODULES:
        for name in module.__all__:
            found.setdefault(name, getattr(module, name))
    return found


SCHEDULER_CLASSES: Dict[str, type] = _collect_classes()


def _concrete_forms(name: str, cls: type) -> List[str]:
    """For a generic (abstract) class, the LR/WD classes a config can name instead."""
    stem = name[: -len("Scheduler")] if name.endswith("Scheduler") else name
    direct = [n for n in (stem + "LR", stem, stem + "WD") if n in SCHEDULER_CLASSES and n != name]
    direct = [n for n in direct if not inspect.isabstract(SCHEDULER_CLASSES[n])]
    if direct:
        return direct
    concrete = [n for n, c in SCHEDULER_CLASSES.items() if issubclass(c, cls) and not inspect.isabstract(c)]
    return close_matches(name, concrete)


def scheduler_class(name: Any, location: str) -> type:
    """The scheduler class a config names, or an error suggesting the closest names."""
    if not isinstance(name, str):
        raise SchedulerConfigError(location, f"a scheduler name must be a string, got {name!r}.")
    cls = SCHEDULER_CLASSES.get(name)
    if cls is None:
        buildable = [n for n, c in SCHEDULER_CLASSES.items() if not inspect.isabstract(c)]
        suggestions = close_matches(name, buildable)
        stripped = name.lower()
        exact_family = [n for n in buildable if n.lower() in (stripped, stripped + "lr", stripped + "wd")]
        suggestions = list(dict.fromkeys(exact_family + suggestions))[:3]
        raise SchedulerConfigError(
            location,
            f"unknown scheduler {name!r}{did_you_mean(suggestions)}. Names are the classes of "
            f"wse.optim.lr_scheduler and wse.optim.weight_decay_scheduler, spelled exactly.",
        )
    if inspect.isabstract(cls):
        forms = _concrete_forms(name, cls)
        raise SchedulerConfigError(
            location,
            f"{name} is a generic base with no param-group key and cannot be built; name one of "
            f"its learning-rate or weight-decay forms instead{did_you_mean(forms)}.",
        )
    return cls


def split_spec(spec: Any, location: str) -> Tuple[str, Any]:
    """``(name, arguments)`` of a ``{ClassName: arguments}`` config."""
    where = location or "config"
    if not isinstance(spec, Mapping):
        raise SchedulerConfigError(
            where,
            f"expected a mapping with one key, the scheduler's class name (e.g. "
            f"{{'LinearLR': {{'initial_learning_rate': 0.01, ...}}}}), got {type(spec).__name__} {spec!r}.",
        )
    if len(spec) != 1:
        hint = ""
        if any(key in SCHEDULER_CLASSES for key in spec):
            hint = " Give one scheduler per config; combine several with SequentialLR or ChainedLR."
        elif spec:
            hint = " These look like arguments; put them under the scheduler's class name."
        raise SchedulerConfigError(
            where,
            f"expected exactly one key, the scheduler's class name, got {len(spec)} keys "
            f"{list(spec)!r}.{hint}",
        )
    ((name, arguments),) = spec.items()
    return name, arguments


def _arguments_as_dict(cls: type, arguments: Any, location: str) -> dict:
    takes_list = takes_argument(cls, "schedulers")
    if arguments is None:
        return {}
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if takes_list and isinstance(arguments, (list, tuple)):
        return {"schedulers": list(arguments)}
    expected = "a mapping of its arguments" + (" or the list of its schedulers" if takes_list else "")
    raise SchedulerConfigError(location, f"expected {expected}, got {type(arguments).__name__} {arguments!r}.")


def require_steps(value: Any, what: str, location: str) -> int:
    """A length in steps, checked as the schedulers check theirs."""
    owner = "_"
    try:
        checks.require_positive_int(owner, **{what: value})
    except (TypeError, ValueError) as error:
        raise SchedulerConfigError(location, str(error)[len(owner) + 2 :]) from None
    return int(value)


def common_tags(children: List[Scheduler]):
    tags = {None if c.param_group_tags is None else frozenset(c.param_group_tags) for c in children}
    if len(tags) == 1:
        (only,) = tags
        return None if only is None else set(only)
    return None


def build(optimizer, spec: Any, location: str = "") -> Scheduler:
    """The scheduler described by ``spec`` (``{ClassName: arguments}``) on ``optimizer``."""
    built, _ = _build(optimizer, spec, location, inherited_tags=_NOT_GIVEN, in_sequence=False)
    return built


def _build(optimizer, spec, location: str, inherited_tags, in_sequence: bool) -> Tuple[Scheduler, Optional[int]]:
    """The scheduler, and its length in steps when the config gives one (``total_iters``).

    Inside a sequence ``total_iters`` is the child's length, so a child whose class takes
    no ``total_iters`` (``StepLR``, ...) may still give one: it is used for the
    milestones and not passed on.
    """
    name, arguments = split_spec(spec, location)
    here = join_location(location, name)
    cls = scheduler_class(name, location or "config")
    kwargs = _arguments_as_dict(cls, arguments, here)

    length = kwargs.get("total_iters")
    if in_sequence and "total_iters" in kwargs and not takes_argument(cls, "total_iters"):
        length = require_steps(kwargs.pop("total_iters"), "total_iters", here)
    if inherited_tags is not _NOT_GIVEN and "param_group_tags" not in kwargs and takes_argument(cls, "param_group_tags"):
        kwargs["param_group_tags"] = inherited_tags

    sequential = issubclass(cls, SequentialScheduler) and takes_argument(cls, "schedulers")
    check_arguments(cls, kwargs, here, computed=("milestones",) if sequential else ())

    tags_for_children = kwargs.get("param_group_tags", _NOT_GIVEN)
    if "schedulers" in kwargs:
        children_specs = kwargs["schedulers"]
        if not isinstance(children_specs, (list, tuple)) or not children_specs:
            raise SchedulerConfigError(
                here, f"`schedulers` must be a non-empty list of scheduler configs, got {children_specs!r}."
            )
        children, lengths = [], []
        for index, child_spec in enumerate(children_specs):
            child, child_length = _build(optimizer, child_spec, f"{here}[{index}]", tags_for_children, sequential)
            children.append(child)
            lengths.append(child_length)
        kwargs["schedulers"] = children
        if sequential:
            kwargs["milestones"] = _sequence_milestones(children_specs, lengths, kwargs.get("milestones"), here)
        if "param_group_tags" not in kwargs:
            kwargs["param_group_tags"] = common_tags(children)
    if "scheduler" in kwargs and takes_argument(cls, "scheduler"):
        nested = _build(optimizer, kwargs["scheduler"], here, tags_for_children, False)[0]
        kwargs["scheduler"] = nested
        if "param_group_tags" not in kwargs:
            kwargs["param_group_tags"] = common_tags([nested])

    return construct(cls, optimizer, kwargs, here), length


def _sequence_milestones(children_specs, lengths: List[Optional[int]], given, location: str) -> List[int]:
    """Milestones at the cumulative ``total_iters`` of all children but the last."""
    leading = lengths[:-1]
    unknown = [i for i, n in enumerate(leading) if n is None]
    if unknown and given is None:
        index = unknown[0]
        child_name = next(iter(children_specs[index]))
        raise SchedulerConfigError(
            f"{location}[{index}].{child_name}",
            "needs `total_iters`, its length in steps: another scheduler follows it, and the "
            "milestones of a sequence are computed from the lengths of all but the last scheduler.",
        )
    if unknown:
        return given
    for index, value in enumerate(leading):
        require_steps(value, "total_iters", f"{location}[{index}].{next(iter(children_specs[index]))}")
    computed = list(accumulate(int(n) for n in leading))
    if given is not None:
        given_list = given.tolist() if hasattr(given, "tolist") else list(given)
        if given_list != computed:
            raise SchedulerConfigError(
                location,
                f"`milestones` {given_list} disagree with {computed}, the cumulative `total_iters` "
                f"of the schedulers; leave `milestones` out, they are computed.",
            )
    return computed
