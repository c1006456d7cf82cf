"""Checking config arguments against a scheduler's signature, and constructing it.

The signature of the scheduler class is the single source of truth for what a config
may say: an argument it does not take is an error that suggests the closest one it
does take, and a required argument the config leaves out is an error that names it.
Value checks (finite, positive, increasing milestones, ...) stay in the schedulers'
constructors; their messages are passed on, prefixed with where in the config the
scheduler was written.
"""
from __future__ import annotations

import inspect
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

from ._config_errors import SchedulerConfigError, close_matches, did_you_mean


def scheduler_arguments(cls: type) -> Dict[str, inspect.Parameter]:
    """The constructor arguments a config may give: all but ``optimizer``."""
    parameters = inspect.signature(cls).parameters
    return {
        name: parameter
        for name, parameter in parameters.items()
        if name != "optimizer" and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    }


def takes_argument(cls: type, name: str) -> bool:
    return name in scheduler_arguments(cls)


def _alternatives(names: Sequence[str]) -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def check_arguments(
    cls: type,
    given: Iterable[str],
    location: str,
    computed: Iterable[str] = (),
    aliases: Optional[Mapping[str, Sequence[str]]] = None,
    unexpected: Iterable[str] = (),
) -> None:
    """Raise if ``given`` has names ``cls`` does not take or lacks ones it needs.

    ``computed`` are arguments filled in by the configure function (never missing).
    ``aliases`` maps an accepted argument to the other names a config may use for it;
    they are offered as suggestions and named in "missing" messages. ``unexpected``
    are names already known to be wrong (an alias that fits no argument of ``cls``).
    """
    accepted = scheduler_arguments(cls)
    aliases = aliases or {}
    given = list(given)
    wrong = list(unexpected) + [name for name in given if name not in accepted]
    missing = [
        name
        for name, parameter in accepted.items()
        if parameter.default is parameter.empty and name not in given and name not in computed
    ]
    if not wrong and not missing:
        return
    spellable = list(accepted) + [alias for name in accepted for alias in aliases.get(name, ())]
    problems: List[str] = []
    if wrong:
        described = []
        for name in dict.fromkeys(wrong):
            if name == "optimizer":
                described.append("'optimizer' (the optimizer is passed to the configure function, not written in the config)")
            else:
                described.append(repr(name) + did_you_mean(close_matches(name, spellable)))
        plural = "s" if len(described) > 1 else ""
        problems.append(f"unexpected argument{plural} " + ", ".join(described))
    if missing:
        described = []
        for name in missing:
            other_names = aliases.get(name, ())
            extra = f" (also accepted as {_alternatives(list(other_names))})" if other_names else ""
            described.append(repr(name) + extra)
        plural = "s" if len(missing) > 1 else ""
        problems.append(f"missing required argument{plural} " + ", ".join(described))
    takes = ", ".join(name for name in accepted)
    raise SchedulerConfigError(location, "; ".join(problems) + f". {cls.__name__} takes: {takes}.")


def construct(cls: type, optimizer, kwargs: dict, location: str):
    """``cls(optimizer, **kwargs)`` (without the optimizer if ``cls`` takes none).

    The constructor's own ``ValueError``/``TypeError`` (or arithmetic error) is re-raised as a
    ``SchedulerConfigError`` at ``location``, with its message kept word for word (the
    leading class name, which ``location`` already ends with, is not repeated).
    """
    takes_optimizer = "optimizer" in inspect.signature(cls).parameters
    try:
        return cls(optimizer, **kwargs) if takes_optimizer else cls(**kwargs)
    except SchedulerConfigError:
        raise
    except (ValueError, TypeError, ArithmeticError) as error:
        message = str(error)
        own_prefix = f"{cls.__name__}: "
        if message.startswith(own_prefix) and location.endswith(cls.__name__):
            message = message[len(own_prefix):]
        raise SchedulerConfigError(location, message) from error
