"""Build a wse optimizer from a config: a type name and flat keyword arguments.

The optimizer's constructor signature decides which arguments apply. As in
cerebras-pytorch, arguments it does not take are ignored (a config often holds keys
meant for other components) and logged; one that is a likely misspelling of an
argument it does take is also warned about, with the suggestion. Names that older
configs used for an argument (``weight_decay_rate``, ``beta1``/``beta2``...) are errors
that say what to write instead.
"""
from __future__ import annotations

import inspect
import logging
import warnings
from typing import Any, Dict, Iterable, Tuple, Type

from ._config_errors import close_matches, did_you_mean
from .optimizer import Optimizer

logger = logging.getLogger(__name__)

# Argument -> names older configs used for it (each is an error naming the argument).
_RENAMED = {
    "weight_decay": ("weight_decay_rate",),
    "betas": ("beta1", "beta2"),
    "eps": ("eps1", "eps2"),
    "etas": ("eta1", "eta2"),
    "step_sizes": ("step_size_min", "step_size_max"),
}


def _subclasses(cls: type) -> Iterable[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def available_optimizers() -> Dict[str, Type[Optimizer]]:
    """Every concrete optimizer that ``configure_optimizer`` can build, by lower-case name.

    A user's subclass of ``wse.optim.Optimizer`` is included once it is imported.
    """
    found = {}
    for cls in _subclasses(Optimizer):
        if not inspect.isabstract(cls) and not cls.__name__.startswith("_"):
            found.setdefault(cls.__name__.lower(), cls)
    return found


def _optimizer_class(optimizer_type: str) -> Type[Optimizer]:
    if not isinstance(optimizer_type, str):
        raise TypeError(f"`optimizer_type` must be the name of an optimizer (a str), got {optimizer_type!r}.")
    classes = available_optimizers()
    cls = classes.get(optimizer_type.lower())
    if cls is None:
        names = sorted(c.__name__ for c in classes.values())
        hint = did_you_mean(close_matches(optimizer_type, names, limit=1))
        raise ValueError(f"Unknown optimizer type {optimizer_type!r}{hint}. Available optimizers: {', '.join(names)}.")
    return cls


def configure_optimizer_params(optimizer_type: str, kwargs: Dict[str, Any]) -> Tuple[Type[Optimizer], Dict[str, Any]]:
    """The optimizer class named ``optimizer_type`` (any case) and the arguments for it.

    ``kwargs`` are flattened optimizer params; it is not modified. ``learning_rate``
    (a number, or a numeric string) is accepted for ``lr``; when neither is given (the
    learning rate comes from a scheduler) the signature's default is used, else a
    placeholder of 0.1, which the scheduler overwrites before the first step.
    """
    cls = _optimizer_class(optimizer_type)
    remaining = dict(kwargs)
    learning_rate = remaining.pop("learning_rate", None)
    if isinstance(learning_rate, (int, float, str)) and not isinstance(learning_rate, bool):
        learning_rate = float(learning_rate)
    else:
        learning_rate = None

    parameters = list(inspect.signature(cls).parameters.values())
    if not parameters or parameters[0].name != "params":
        raise ValueError(
            f"configure_optimizer needs an optimizer whose first argument is `params`; {cls.__name__} takes "
            f"{inspect.signature(cls)}."
        )
    chosen: Dict[str, Any] = {}
    renamed = []
    for parameter in parameters[1:]:
        name = parameter.name
        if parameter.kind is parameter.VAR_KEYWORD:
            chosen.update(remaining)
            remaining.clear()
            break
        if parameter.kind is parameter.VAR_POSITIONAL:
            continue
        if name in remaining:
            chosen[name] = remaining.pop(name)
        elif name in ("lr", "learning_rate"):
            if learning_rate is not None:
                chosen[name] = learning_rate
            elif parameter.default is not parameter.empty:
                chosen[name] = parameter.default
            elif remaining.get("relative_step"):
                chosen[name] = None  # Adafactor's relative step replaces the learning rate
            else:
                chosen[name] = 0.1  # a placeholder: a learning-rate scheduler sets the value
        else:
            renamed += [(name, old) for old in _RENAMED.get(name, ()) if old in remaining]
    if renamed:
        lines = "; ".join(f"write `{new}` instead of `{old}`" for new, old in renamed)
        raise ValueError(f"{cls.__name__} got arguments under names that are no longer supported: {lines}.")

    if remaining:
        accepted = [p.name for p in parameters[1:]]
        unknown = []
        for name in sorted(remaining):
            matches = close_matches(name, accepted, limit=1)
            if matches:
                warnings.warn(
                    f"{cls.__name__}: ignoring argument {name!r}{did_you_mean(matches)}",
                    UserWarning,
                    stacklevel=3,
                )
            else:
                unknown.append(name)
        if unknown:
            logger.warning(
                "%s ignores %d argument(s) it does not take: %s. It takes: %s.",
                cls.__name__,
                len(unknown),
                unknown,
                ", ".join(accepted),
            )
    return cls, chosen


def configure_optimizer(optimizer_type: str, params, **kwargs) -> Optimizer:
    """Build the optimizer named ``optimizer_type`` on ``params``, from flat keyword arguments.

    Example::

        optimizer = configure_optimizer("SGD", model.parameters(), lr=0.001, momentum=0.5)
    """
    cls, arguments = configure_optimizer_params(optimizer_type, kwargs)
    try:
        return cls(params, **arguments)
    except TypeError as error:
        raise RuntimeError(f"Failed to configure {cls.__name__} with arguments {sorted(arguments)}: {error}") from error
