"""Param-group tags: which groups a scheduler targets."""
from __future__ import annotations

from typing import Iterable, Optional, Set, Union

TagSpec = Optional[Union[str, Iterable[Optional[str]]]]


def normalise_group_tags(tags) -> Set[Optional[str]]:
    """A param group's ``tags`` as a set (a bare string is one tag; missing is ``{None}``)."""
    if tags is None:
        return {None}
    if isinstance(tags, str):
        return {tags}
    return set(tags)


def normalise_scheduler_tags(param_group_tags: TagSpec, owner: str) -> Optional[Set[Optional[str]]]:
    """A scheduler's ``param_group_tags`` as a set, or ``None`` for every group.

    ``None`` inside a list stands for the groups that carry no tags.
    """
    if param_group_tags is None:
        return None
    if isinstance(param_group_tags, str):
        return {param_group_tags}
    if not isinstance(param_group_tags, (list, tuple, set, frozenset)):
        raise TypeError(
            f"{owner}: `param_group_tags` must be a tag, a list of tags or None, got {param_group_tags!r}."
        )
    tags = set(param_group_tags)
    if len(tags) != len(param_group_tags):
        raise ValueError(f"{owner}: `param_group_tags` contains duplicates: {list(param_group_tags)!r}.")
    return tags


def group_matches(param_group_tags, group: dict) -> bool:
    """Whether a scheduler with ``param_group_tags`` applies to ``group``."""
    if param_group_tags is None:
        return True
    return bool(param_group_tags & normalise_group_tags(group.get("tags")))
