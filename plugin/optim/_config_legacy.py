"""The older learning-rate config: ``{"scheduler": name, ...}`` with Model Zoo and TensorFlow names.

This is the ``learning_rate`` format of ``configure_lr_scheduler`` and of Cerebras Model
Zoo YAML files. The scheduler is named by the ``scheduler`` key, case-insensitively and
with or without the ``LR`` suffix (``Linear``, ``linearlr``, ``CosineDecay``), including
the old Model Zoo names ``Constant``, ``Exponential``, ``PiecewiseConstant`` and
``Polynomial``. Arguments may use the TensorFlow-style names of those YAML files:

=================  ===============================================================
``learning_rate``  ``initial_learning_rate`` (kept as is where the class takes it)
``val``            ``learning_rate`` of ``ConstantLR``, else ``initial_learning_rate``
``decay_steps``    ``total_iters``
``steps``          ``total_iters``
=================  ===============================================================

``end_learning_rate``, ``decay_rate``, ``staircase``, ``power``, ``learning_rates`` and
``milestones`` already have their current names. ``Polynomial`` is ``PolynomialLR`` with
any ``power``.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Dict, Optional, Tuple

from . import lr_scheduler
from ._config_errors import SchedulerConfigError, close_matches, did_you_mean, join_location
from ._config_signature import check_arguments, scheduler_arguments
from ._config_tree import SCHEDULER_CLASSES

# Old argument name -> the current names it may stand for, first one the class takes wins.
LEGACY_ARGUMENTS: Dict[str, Tuple[str, ...]] = {
    "learning_rate": ("initial_learning_rate",),
    "val": ("learning_rate", "initial_learning_rate"),
    "decay_steps": ("total_iters",),
    "steps": ("total_iters",),
}

# Keys of a learning-rate entry that are about the entry, not arguments of the scheduler.
ENTRY_KEYS = ("scheduler", "main_scheduler")

# Written by the configure functions around the entry, never inside it.
_NESTING_ARGUMENTS = ("schedulers", "scheduler")


def normalise_name(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def _legacy_names() -> Dict[str, type]:
    names: Dict[str, type] = {}
    for class_name in lr_scheduler.__all__:
        cls = getattr(lr_scheduler, class_name)
        if inspect.isabstract(cls):
            continue
        key = normalise_name(class_name)
        names.setdefault(key, cls)
        if key.endswith("lr"):
            names.setdefault(key[:-2], cls)
    return names


LEGACY_NAMES: Dict[str, type] = _legacy_names()


def _spellings() -> list:
    """The names offered as suggestions: every class name and its short form."""
    spellings = []
    for class_name in lr_scheduler.__all__:
        if normalise_name(class_name) in LEGACY_NAMES:
            spellings.append(class_name)
            if class_name.endswith("LR"):
                spellings.append(class_name[:-2])
    return spellings


def aliases_for(cls: type) -> Dict[str, Tuple[str, ...]]:
    """Current argument of ``cls`` -> the old names that a config may give it under."""
    accepted = scheduler_arguments(cls)
    found: Dict[str, list] = {}
    for old, targets in LEGACY_ARGUMENTS.items():
        if old in accepted:
            continue
        target = next((t for t in targets if t in accepted), None)
        if target is not None:
            found.setdefault(target, []).append(old)
    return {target: tuple(olds) for target, olds in found.items()}


def legacy_class(name: Any, location: str) -> type:
    """The learning-rate class the ``scheduler`` entry names."""
    if not isinstance(name, str):
        raise SchedulerConfigError(location, f"`scheduler` must be the name of a scheduler, got {name!r}.")
    cls = LEGACY_NAMES.get(normalise_name(name))
    if cls is None:
        extra = ""
        if name in SCHEDULER_CLASSES:
            extra = f" {name} is not a learning-rate scheduler; weight decay is configured with configure_scheduler."
        raise SchedulerConfigError(
            location,
            f"unknown scheduler {name!r}{did_you_mean(close_matches(name, _spellings()))}.{extra} Names are "
            f"the classes of wse.optim.lr_scheduler, with or without 'LR', in any case.",
        )
    if any(argument in scheduler_arguments(cls) for argument in _NESTING_ARGUMENTS):
        raise SchedulerConfigError(
            location,
            f"{cls.__name__} is made of other schedulers and cannot be written as one entry; give a "
            f"list of entries instead (a SequentialLR, or a ChainedLR with `main_scheduler: ChainedLR`).",
        )
    return cls


def legacy_params(entry: Any, location: str, in_sequence: bool = False) -> Tuple[type, dict, Optional[Any]]:
    """``(cls, kwargs, length)`` of one ``{"scheduler": name, ...}`` entry.

    ``kwargs`` use the current argument names. ``length`` is the entry's
    ``total_iters`` (under any of its names) or None. Inside a sequence an entry whose
    class takes no ``total_iters`` may still give one: it is its length, used for the
    milestones, and not passed to the class.
    """
    if not isinstance(entry, Mapping):
        raise SchedulerConfigError(
            location,
            f"expected a mapping with a `scheduler` key (e.g. {{'scheduler': 'Linear', ...}}), got "
            f"{type(entry).__name__} {entry!r}.",
        )
    if "scheduler" not in entry:
        hint = ""
        if len(entry) == 1 and next(iter(entry)) in SCHEDULER_CLASSES:
            hint = " This is the configure_scheduler format ({ClassName: arguments}); pass it to configure_scheduler."
        raise SchedulerConfigError(
            location,
            f"has no `scheduler` key naming the scheduler (e.g. {{'scheduler': 'Linear', ...}}); got keys "
            f"{list(entry)!r}.{hint}",
        )
    cls = legacy_class(entry["scheduler"], location)
    here = join_location(location, cls.__name__)
    accepted = scheduler_arguments(cls)

    kwargs: dict = {}
    written_as: Dict[str, str] = {}
    wrong = []
    length_key, length = None, None
    for key, value in entry.items():
        if key in ENTRY_KEYS:
            continue
        # The old meaning first: `val` is ConstantLR's `learning_rate`, although it takes `val` too.
        target = next((t for t in LEGACY_ARGUMENTS.get(key, ()) if t in accepted), key if key in accepted else None)
        if target is None and in_sequence and "total_iters" in (key,) + LEGACY_ARGUMENTS.get(key, ()):
            if length_key is not None:
                raise SchedulerConfigError(here, f"{key!r} and {length_key!r} both give the length; keep one.")
            length_key, length = key, value
            continue
        if target is None:
            wrong.append(key)
            continue
        if target in kwargs:
            raise SchedulerConfigError(
                here, f"{key!r} and {written_as[target]!r} both give `{target}`; keep one."
            )
        kwargs[target] = value
        written_as[target] = key
    check_arguments(cls, kwargs, here, aliases=aliases_for(cls), unexpected=wrong)
    if "total_iters" in kwargs:
        length = kwargs["total_iters"]
    return cls, kwargs, length
