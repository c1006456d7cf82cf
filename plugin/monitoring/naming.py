"""Series names for the values of param groups, as Lightning's ``LearningRateMonitor`` names them.

An optimizer's prefix is ``lr-<OptimizerClass>`` (or a name the user gave), with ``-1``,
``-2``, ... for the second, third optimizer of the same class; each param group of an
optimizer with several groups adds ``/<group name>`` or ``/pg<i>`` (1-based); the
momentum and weight decay series append ``-momentum`` and ``-weight_decay``. So
``lr-AdamW``, ``lr-AdamW/pg2``, ``lr-AdamW/decoder``, ``lr-AdamW-1-weight_decay``.

Two additions, neither of which changes a name Lightning would give:

* a group without a ``name`` but with ``tags`` (the param-group tags that ``wse.optim``
  schedulers select groups by) is named by its tags, sorted and joined by ``+``
  (``lr-AdamW/no_decay``, ``lr-AdamW/bias+norm``); where two groups would get the same
  tag name, each adds its position (``lr-AdamW/decay-pg1``, ``lr-AdamW/decay-pg2``);
* names are given per distinct optimizer, so an optimizer that several schedulers step
  (an LR and a WD scheduler, say) has one set of series, not one per scheduler.

One difference where Lightning has a bug: Lightning appends the ``-<n>`` of its
class count to an explicitly named scheduler config when unnamed optimizers of the same
class came before it (``name="head"`` can become ``head-1``); here a name the user gave is
used exactly as given.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence

LR_SUFFIX = ""
MOMENTUM_SUFFIX = "-momentum"
WEIGHT_DECAY_SUFFIX = "-weight_decay"


def unwrap_optimizer(optimizer):
    """The optimizer that holds the param groups (Lightning's, Accelerate's and DeepSpeed's wrappers hold it as ``.optimizer``)."""
    inner = getattr(optimizer, "optimizer", None)
    while inner is not None and hasattr(inner, "param_groups"):
        optimizer = inner
        inner = getattr(optimizer, "optimizer", None)
    return optimizer


def tags_label(tags) -> Optional[str]:
    """A param group's ``tags`` as one name: sorted, joined by ``+`` (``None`` when untagged)."""
    if tags is None:
        return None
    if isinstance(tags, str):
        return tags or None
    # Sorted, because a set's order depends on the hash seed and would differ between processes.
    labels = sorted(str(tag) for tag in tags if tag is not None)
    return "+".join(labels) or None


def group_labels(param_groups: Sequence[dict], prefix: str) -> List[Optional[str]]:
    """What each group adds after ``/``: its ``name``, else its tags, else ``None``.

    Raises ``ValueError`` when two groups have the same ``name`` (as Lightning does): their
    series would overwrite each other.
    """
    names = [group.get("name") for group in param_groups]
    given = [name for name in names if name is not None]
    duplicated = sorted({str(name) for name in given if given.count(name) > 1})
    if duplicated:
        raise ValueError(
            f"An optimizer cannot have several param groups with the same `name`: {prefix} has duplicated "
            f"param group names {duplicated}. Give each param group a distinct `name`."
        )
    labels: List[Optional[str]] = [None if name is None else str(name) for name in names]
    from_tags = {index: tags_label(group.get("tags")) for index, group in enumerate(param_groups) if names[index] is None}
    taken = [label for label in labels if label is not None] + [label for label in from_tags.values() if label]
    for index, label in from_tags.items():
        if label is None:
            continue
        labels[index] = label if taken.count(label) == 1 else f"{label}-pg{index + 1}"
    return labels


def group_series_names(param_groups: Sequence[dict], prefix: str) -> List[str]:
    """The LR series name of each param group of one optimizer whose prefix is ``prefix``."""
    labels = group_labels(param_groups, prefix)
    if len(param_groups) > 1:
        return [f"{prefix}/{label if label is not None else f'pg{index + 1}'}" for index, label in enumerate(labels)]
    return [f"{prefix}/{label}" if label is not None else prefix for label in labels]


def optimizer_prefixes(optimizers: Sequence, names: Optional[Sequence[Optional[str]]] = None) -> List[str]:
    """The series prefix of each (distinct, unwrapped) optimizer, in order.

    ``names[i]``, when not ``None``, replaces ``lr-<Class>`` for optimizer ``i`` (Lightning's
    scheduler-config ``name``) and is used as given. The others are ``lr-<Class>``, and the
    ``n``-th unnamed optimizer of a class (counting from 0) gets ``-n`` from ``n = 1`` on.
    """
    if names is None:
        names = [None] * len(optimizers)
    if len(names) != len(optimizers):
        raise ValueError(f"`names` must have one entry per optimizer: got {len(names)} for {len(optimizers)} optimizers.")
    seen_per_class: Dict[type, int] = {}
    prefixes = []
    for optimizer, name in zip(optimizers, names):
        if name is not None:
            prefixes.append(str(name))
            continue
        cls = type(optimizer)
        count = seen_per_class[cls] = seen_per_class.get(cls, 0) + 1
        prefix = f"lr-{cls.__name__}"
        prefixes.append(prefix if count == 1 else f"{prefix}-{count - 1}")
    duplicated = sorted({prefix for prefix in prefixes if prefixes.count(prefix) > 1})
    if duplicated:
        raise ValueError(
            f"Two optimizers would log under the same name {duplicated}. Give their schedulers distinct `name`s "
            f"(or leave the names out to get lr-<Optimizer>, lr-<Optimizer>-1, ...)."
        )
    return prefixes


def distinct_optimizers(optimizers: Iterable, names: Optional[Sequence[Optional[str]]] = None):
    """Unwrap the optimizers and keep the first occurrence of each (with its name, the first one given)."""
    names = list(names) if names is not None else None
    kept, kept_names, index_of = [], [], {}
    for position, optimizer in enumerate(optimizers):
        optimizer = unwrap_optimizer(optimizer)
        name = names[position] if names is not None else None
        at = index_of.get(id(optimizer))
        if at is None:
            index_of[id(optimizer)] = len(kept)
            kept.append(optimizer)
            kept_names.append(name)
        elif kept_names[at] is None and name is not None:
            kept_names[at] = name
    return kept, kept_names
