"""Schedulers from configs: ``configure_scheduler``, ``configure_lr_scheduler``, ``configure_scheduler_params``.

Two config formats, as in ``cerebras.pytorch.optim``:

* ``configure_scheduler(optimizer, {"LinearLR": {...}})`` names any scheduler class of
  ``wse.optim.lr_scheduler`` / ``weight_decay_scheduler`` and nests schedulers that take
  schedulers::

      SequentialLR:            # milestones are computed from the total_iters
        - LinearLR: {initial_learning_rate: 0.0, end_learning_rate: 1.0e-3, total_iters: 100}
        - CosineDecayLR: {initial_learning_rate: 1.0e-3, end_learning_rate: 1.0e-5, total_iters: 900}

* ``configure_lr_scheduler(optimizer, learning_rate)`` reads the older ``learning_rate``
  value of Model Zoo YAML files: a number (``ConstantLR``), one
  ``{"scheduler": "Linear", ...}`` entry, or a list of entries (a ``SequentialLR`` whose
  milestones are the cumulative ``total_iters``, or a ``ChainedLR`` when an entry says
  ``main_scheduler: ChainedLR``), with the TensorFlow-style argument names of those
  files (see ``_config_legacy``).

``configure_scheduler`` also takes the file ``wse schedule`` previews: a mapping of
``lr`` (or ``learning_rate``) and ``weight_decay`` (or ``wd``) entries, each a config of
either format (a number for a constant), and returns a list of schedulers, one per entry
in the order written, ready for Lightning's ``return [optimizer], schedulers``.

Every config may also be given as YAML or JSON text or as a path to such a file. A bad
config raises ``SchedulerConfigError`` (a ``ValueError``) before anything is stepped,
with the place in the config where the problem is.
"""
from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager
from itertools import accumulate
from typing import Any, Dict, List, Optional, Tuple, Union

from . import lr_scheduler
from ._binding import Scheduler
from ._config_adjust import assign_lr_adjustments
from ._config_errors import SchedulerConfigError, join_location
from ._config_legacy import legacy_params
from ._config_signature import construct
from ._config_source import load_config
from ._config_tree import common_tags, require_steps, build

__all__ = ["SchedulerConfigError", "configure_scheduler", "configure_scheduler_params", "configure_lr_scheduler"]

# Entries of the keyed format (``{lr: ..., weight_decay: ...}``) -> the param-group key they schedule.
PARAM_GROUP_KEYS = {"lr": "lr", "learning_rate": "lr", "weight_decay": "weight_decay", "wd": "weight_decay"}

_CHAINED = {"chainedlr", "chained", "chainedscheduler"}
_SEQUENTIAL = {"sequentiallr", "sequential"}


def configure_scheduler(optimizer, schedulers_params) -> Union[Scheduler, List[Scheduler]]:
    """Configures a generic scheduler from scheduler params.

    ``schedulers_params`` is a mapping with a single key, the name of a scheduler class
    of ``wse.optim.lr_scheduler``, ``wse.optim.weight_decay_scheduler`` or
    ``wse.optim.scheduler``, whose value holds the class's arguments (all but
    ``optimizer``), checked against its signature. A scheduler that takes schedulers
    gets nested configs: a list for ``schedulers`` (for ``SequentialLR``/``SequentialWD``
    ``milestones`` are computed from each child's ``total_iters``; a child whose class
    has no ``total_iters`` may give one as its length), one config for ``scheduler``.
    ``param_group_tags`` of a parent applies to children that give none.

    The config may be YAML/JSON text or a path to a file. A number, a list, or a mapping
    with a ``scheduler`` key is the older learning-rate format and is read by
    ``configure_lr_scheduler``.

    A mapping whose keys are ``lr`` (or ``learning_rate``) and ``weight_decay`` (or
    ``wd``), the format ``wse schedule`` previews, configures each of them (a config of
    either format, or a number for a constant) and returns a list of the schedulers, one
    per entry in the order written: ``return [optimizer], configure_scheduler(optimizer,
    "schedule.yaml")`` in ``configure_optimizers``. If any entry is bad, none is built.
    """
    config = load_config(schedulers_params)
    entries = keyed_entries(config)
    if "" in entries:
        return scheduler_from_config(optimizer, config)
    with _param_groups_restored_on_error(optimizer):
        return [build_entry(optimizer, key, written, entry) for key, (written, entry) in entries.items()]


def keyed_entries(config: Any) -> Dict[str, Tuple[str, Any]]:
    """Param-group key -> (the key as written, its config), in the order written.

    The config is either a ``{lr: ..., weight_decay: ...}`` mapping (also spelt
    ``learning_rate`` and ``wd``) or a single scheduler config, keyed ``""``.
    """
    is_keyed = (
        isinstance(config, Mapping)
        and config
        and "scheduler" not in config
        and all(key in PARAM_GROUP_KEYS for key in config)
    )
    if not is_keyed:
        return {"": ("", config)}
    entries: Dict[str, Tuple[str, Any]] = {}
    for written, value in config.items():
        target = PARAM_GROUP_KEYS[written]
        if target in entries:
            raise SchedulerConfigError(
                "config", f"{written!r} and {entries[target][0]!r} both configure `{target}`; keep one."
            )
        entries[target] = (written, value)
    return entries


def build_entry(optimizer, key: str, written: str, config: Any) -> Scheduler:
    """The scheduler of one keyed entry; ``key`` is the param-group key it must schedule ("" for any)."""
    from .weight_decay_scheduler import ConstantWD

    is_number = isinstance(config, (int, float)) and not isinstance(config, bool)
    if key == "weight_decay" and is_number:
        return construct(ConstantWD, optimizer, {"val": config}, join_location(written, "ConstantWD"))
    scheduler = scheduler_from_config(optimizer, config, written)
    if key and scheduler.param_group_key != key:
        raise SchedulerConfigError(
            written,
            f"configures {type(scheduler).__name__}, which schedules `{scheduler.param_group_key}`, not "
            f"`{key}`; use the {'WD' if key == 'weight_decay' else 'LR'} form of the scheduler.",
        )
    return scheduler


def scheduler_from_config(optimizer, config, location: str = "") -> Scheduler:
    """``configure_scheduler``, with ``location`` naming the config's place in errors."""
    config = load_config(config)
    if _is_learning_rate_format(config):
        return lr_scheduler_from_config(optimizer, config, None, location or "learning_rate")
    with _param_groups_restored_on_error(optimizer):
        return build(optimizer, config, location)


def configure_scheduler_params(learning_rate) -> Tuple[type, dict]:
    """Get the kwargs and LR class from params.

    ``learning_rate`` is one entry of the older format, ``{"scheduler": name, ...}``;
    returns the learning-rate scheduler class and its keyword arguments (all but the
    optimizer) under their current names, checked against the class's signature.
    """
    cls, kwargs, _ = legacy_params(load_config(learning_rate), "learning_rate")
    return cls, kwargs


def configure_lr_scheduler(optimizer, learning_rate, adjust_learning_rate: Optional[Mapping] = None) -> lr_scheduler.LRScheduler:
    """Configures a learning rate scheduler from the older ``learning_rate`` format.

    ``learning_rate`` is one of:

    * a number: a ``ConstantLR`` at that value;
    * a mapping with the key ``scheduler`` naming the class (``"Linear"``,
      ``"CosineDecayLR"``, ``"Constant"``, ...), the other keys being its arguments;
    * a list of such mappings: a ``SequentialLR`` whose milestones are the cumulative
      ``total_iters`` of all entries but the last (which may leave it out), or a
      ``ChainedLR`` if any entry has ``main_scheduler: ChainedLR``.

    ``adjust_learning_rate`` maps a layer type or parameter-name substring to a factor;
    when given, the result is wrapped in ``ScalePerParamLR``, which multiplies each
    group's learning rate by the group's ``adjust_learning_rate`` entry. Groups that have
    no entry get one here from the names of their parameters (build the optimizer from
    ``model.named_parameters()``); see ``wse.optim._config_adjust``.
    """
    return lr_scheduler_from_config(optimizer, learning_rate, adjust_learning_rate)


def lr_scheduler_from_config(optimizer, learning_rate, adjust_learning_rate=None, location: str = "learning_rate"):
    """``configure_lr_scheduler``, with ``location`` naming the config's place in errors."""
    config = load_config(learning_rate)
    with _param_groups_restored_on_error(optimizer):
        scheduler = _learning_rate_scheduler(optimizer, config, location)
        if adjust_learning_rate:
            assign_lr_adjustments(optimizer, adjust_learning_rate)
            scheduler = construct(
                lr_scheduler.ScalePerParamLR,
                optimizer,
                {"scheduler": scheduler, "param_group_tags": scheduler.param_group_tags},
                join_location(location, "ScalePerParamLR"),
            )
    return scheduler


@contextmanager
def _param_groups_restored_on_error(optimizer):
    """Undo what schedulers built before a failing one wrote into the param groups.

    Constructing a scheduler performs its first step, which writes into the groups; a
    config that fails part-way must not leave the optimizer half-configured.
    """
    groups = getattr(optimizer, "param_groups", None)
    saved = [{k: v for k, v in group.items() if k != "params"} for group in groups] if groups else None
    try:
        yield
    except SchedulerConfigError:
        if saved is not None:
            for group, before in zip(groups, saved):
                params = group["params"]
                group.clear()
                group.update(before, params=params)
        raise


def _is_learning_rate_format(config: Any) -> bool:
    is_number = isinstance(config, (int, float)) and not isinstance(config, bool)
    return is_number or isinstance(config, (list, tuple)) or (isinstance(config, Mapping) and "scheduler" in config)


def _learning_rate_scheduler(optimizer, config: Any, location: str) -> lr_scheduler.LRScheduler:
    if isinstance(config, (int, float)) and not isinstance(config, bool):
        return construct(lr_scheduler.ConstantLR, optimizer, {"learning_rate": config}, join_location(location, "ConstantLR"))
    if isinstance(config, Mapping):
        cls, kwargs, _ = legacy_params(config, location)
        return construct(cls, optimizer, kwargs, join_location(location, cls.__name__))
    if isinstance(config, (list, tuple)):
        return _learning_rate_list(optimizer, list(config), location)
    raise SchedulerConfigError(
        location,
        f"expected a number, a mapping with a `scheduler` key, or a list of such mappings; got "
        f"{type(config).__name__} {config!r}.",
    )


def _main_scheduler(entries: list, location: str) -> str:
    """``"ChainedLR"`` if any entry asks for it, else ``"SequentialLR"``."""
    chosen = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or "main_scheduler" not in entry:
            continue
        value = entry["main_scheduler"]
        normal = str(value).lower().replace("_", "")
        if normal in _CHAINED:
            chosen.setdefault("ChainedLR", index)
        elif normal in _SEQUENTIAL:
            chosen.setdefault("SequentialLR", index)
        else:
            raise SchedulerConfigError(
                f"{location}[{index}]",
                f"`main_scheduler` must be 'ChainedLR' or 'SequentialLR', got {value!r}.",
            )
    if len(chosen) > 1:
        raise SchedulerConfigError(
            location,
            f"entries disagree on `main_scheduler`: {location}[{chosen['ChainedLR']}] says ChainedLR and "
            f"{location}[{chosen['SequentialLR']}] says SequentialLR.",
        )
    return next(iter(chosen), "SequentialLR")


def _learning_rate_list(optimizer, entries: list, location: str) -> lr_scheduler.LRScheduler:
    if not entries:
        raise SchedulerConfigError(location, "the list of schedulers is empty; give at least one entry.")
    main = _main_scheduler(entries, location)
    sequential = main == "SequentialLR"
    children, lengths = [], []
    for index, entry in enumerate(entries):
        cls, kwargs, length = legacy_params(entry, f"{location}[{index}]", in_sequence=sequential)
        here = join_location(f"{location}[{index}]", cls.__name__)
        if length is not None and sequential:
            length = require_steps(length, "total_iters", here)
        children.append(construct(cls, optimizer, kwargs, here))
        lengths.append((here, length))
    if len(children) == 1:
        return children[0]
    tags = common_tags(children)
    if not sequential:
        return construct(lr_scheduler.ChainedLR, optimizer, {"schedulers": children, "param_group_tags": tags}, join_location(location, "ChainedLR"))
    for here, length in lengths[:-1]:
        if length is None:
            raise SchedulerConfigError(
                here,
                "needs `total_iters` (or `decay_steps`/`steps`), its length in steps: another scheduler "
                "follows it, and the milestones of the sequence are the cumulative lengths.",
            )
    milestones = list(accumulate(length for _, length in lengths[:-1]))
    return construct(
        lr_scheduler.SequentialLR,
        optimizer,
        {"schedulers": children, "milestones": milestones, "param_group_tags": tags},
        join_location(location, "SequentialLR"),
    )
