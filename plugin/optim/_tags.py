"""Param-group tags: which groups a scheduler targets."""
from __future__ import annotations

from typing import Iterable, List, Optional, Set, Union

from ._config_errors import close_matches, did_you_mean

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


def available_tags(groups) -> Set[Optional[str]]:
    """Every tag the param groups carry (``None`` if some group is untagged)."""
    available: Set[Optional[str]] = set()
    for group in groups:
        available |= normalise_group_tags(group.get("tags"))
    return available


def _describe(tag: Optional[str]) -> str:
    return "None (untagged groups)" if tag is None else repr(tag)


def require_every_tag_matches(param_group_tags, groups, owner: str) -> None:
    """Raise if any of the scheduler's tags selects no param group.

    A tag that matches nothing is almost always a misspelling, and a scheduler whose
    tags are partly wrong would silently leave the groups it was meant for unscheduled.
    """
    if param_group_tags is None:
        return
    available = available_tags(groups)
    unmatched = [tag for tag in param_group_tags if tag not in available]
    if not unmatched:
        return
    named = sorted((tag for tag in available if tag is not None))
    problems: List[str] = []
    for tag in sorted(unmatched, key=lambda t: (t is None, str(t))):
        hint = did_you_mean(close_matches(tag, named, limit=1)) if isinstance(tag, str) else ""
        problems.append(_describe(tag) + hint)
    listed = ", ".join(_describe(tag) for tag in sorted(available, key=lambda t: (t is None, str(t))))
    raise ValueError(
        f"{owner}: `param_group_tags` {problems[0] if len(problems) == 1 else '[' + ', '.join(problems) + ']'} "
        f"match{'es' if len(problems) == 1 else ''} no param group of the optimizer; every tag must select "
        f"at least one group. Available tags: {listed}. Fix the tag, or set `tags` on the param groups "
        f"(e.g. optimizer.param_groups[i]['tags'] = {{'decay'}})."
    )
