"""The error raised for a bad scheduler config, and the close-match hints it carries."""
from __future__ import annotations

import difflib
from typing import Iterable, List, Optional


class SchedulerConfigError(ValueError):
    """A scheduler config that cannot be built.

    The message starts with the location of the problem in the config (for example
    ``SequentialLR[1].CosineDecayLR``), then says what is wrong and how to fix it. It is
    a ``ValueError``, so code that already catches the schedulers' own ``ValueError``
    keeps working.
    """

    def __init__(self, location: str, problem: str):
        self.location = location
        self.problem = problem
        super().__init__(f"{location}: {problem}" if location else problem)


def close_matches(word: str, candidates: Iterable[str], limit: int = 3) -> List[str]:
    """The candidates closest to ``word``, ignoring case, best first."""
    candidates = list(dict.fromkeys(candidates))
    by_lower = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    found = difflib.get_close_matches(str(word).lower(), list(by_lower), n=limit, cutoff=0.6)
    return [by_lower[lower] for lower in found]


def did_you_mean(matches: List[str]) -> str:
    """`` (did you mean 'a' or 'b'?)`` for the matches, or nothing when there are none."""
    if not matches:
        return ""
    quoted = [repr(m) for m in matches]
    joined = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f" (did you mean {joined}?)"


def join_location(parent: str, child: Optional[str]) -> str:
    """``parent.child``, or either one alone when the other is empty."""
    if not parent:
        return child or ""
    if not child:
        return parent
    return f"{parent}.{child}"
