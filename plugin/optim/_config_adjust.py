"""Per-layer learning-rate factors (``adjust_learning_rate``) written into param groups.

``ScalePerParamLR`` multiplies the learning rate of each param group by the group's
``adjust_learning_rate`` entry. A group gets that entry in one of two ways:

* the code that builds the param groups sets it (the Cerebras Model Zoo way), or
* ``configure_lr_scheduler(..., adjust_learning_rate={...})`` derives it from the names
  of the group's parameters (``param_names``, which torch keeps when an optimizer is
  built from ``model.named_parameters()``): a key of the mapping that is a substring of
  a parameter's name gives that parameter its factor, 1 where no key matches.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Dict, List

from ._config_errors import SchedulerConfigError, close_matches, did_you_mean

GROUP_KEY = "adjust_learning_rate"


def _checked_factors(adjust_learning_rate, location: str) -> Dict[str, float]:
    if not isinstance(adjust_learning_rate, Mapping):
        raise SchedulerConfigError(
            location,
            f"expected a mapping of layer type or parameter-name substring to a learning-rate factor, "
            f"got {type(adjust_learning_rate).__name__} {adjust_learning_rate!r}.",
        )
    factors = {}
    for key, factor in adjust_learning_rate.items():
        if not isinstance(key, str) or not key:
            raise SchedulerConfigError(location, f"keys must be non-empty strings, got {key!r}.")
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor < 0:
            raise SchedulerConfigError(
                f"{location}.{key}", f"the factor must be a finite number >= 0, got {factor!r}."
            )
        factors[key] = float(factor)
    return factors


def _group_factor(index: int, names: List[str], factors: Dict[str, float], used: set, location: str) -> float:
    by_factor: Dict[float, List[str]] = {}
    for name in names:
        matched = [key for key in factors if key in name]
        if len({factors[key] for key in matched}) > 1:
            listed = ", ".join(f"{key!r} ({factors[key]})" for key in matched)
            raise SchedulerConfigError(
                location,
                f"parameter {name!r} matches keys with different factors: {listed}; make the keys "
                f"specific enough that each parameter matches one factor.",
            )
        used.update(matched)
        by_factor.setdefault(factors[matched[0]] if matched else 1.0, []).append(name)
    if len(by_factor) > 1:
        listed = "; ".join(f"{factor}: {names[:3]}" for factor, names in by_factor.items())
        raise SchedulerConfigError(
            location,
            f"param group {index} mixes parameters with different factors ({listed}); a group has "
            f"one learning rate, so put them in separate param groups.",
        )
    return next(iter(by_factor), 1.0)


def assign_lr_adjustments(optimizer, adjust_learning_rate, location: str = "adjust_learning_rate") -> None:
    """Set ``adjust_learning_rate`` in every param group that has none, from the names of its parameters.

    Everything is checked before any group is changed. Groups that already carry an
    entry keep it. When every group is resolved from names, a key that matches no
    parameter is an error (it is most likely misspelt).
    """
    factors = _checked_factors(adjust_learning_rate, location)
    groups = optimizer.param_groups
    pending = [index for index, group in enumerate(groups) if GROUP_KEY not in group]
    used: set = set()
    resolved = {}
    for index in pending:
        names = groups[index].get("param_names")
        if not names:
            raise SchedulerConfigError(
                location,
                f"param group {index} has no `{GROUP_KEY}` entry and no parameter names to match the keys "
                f"against. Build the optimizer from model.named_parameters() (torch keeps the names), or "
                f"set `{GROUP_KEY}` in the param group yourself.",
            )
        resolved[index] = _group_factor(index, list(names), factors, used, location)
    if pending and len(pending) == len(groups):
        unused = [key for key in factors if key not in used]
        if unused:
            parts = sorted({part for index in pending for name in groups[index]["param_names"] for part in name.split(".")})
            key = unused[0]
            raise SchedulerConfigError(
                location,
                f"key {key!r} matches no parameter name{did_you_mean(close_matches(key, parts))}. Keys are "
                f"substrings of names such as {groups[pending[0]]['param_names'][0]!r}.",
            )
    for index, factor in resolved.items():
        groups[index][GROUP_KEY] = factor
