"""Opt-in callbacks for every Trainer: the entry point Lightning calls, driven by ``WSE_CALLBACKS``.

Lightning calls every function registered under the entry-point groups
``lightning.pytorch.callbacks_factory`` (and ``pytorch_lightning.callbacks_factory``
for the ``pytorch_lightning`` package) when it builds a ``Trainer``, in every
environment where wse is installed. So these factories add nothing unless asked:
``WSE_CALLBACKS`` names the callbacks to add, comma-separated (``WSE_CALLBACKS=lr_monitor``).
An unknown name is an error that lists the known ones.

A callback added this way stands aside when the user passed one of the same kind
(``lr_monitor`` defers to any ``LearningRateMonitor``, Lightning's or wse's), so a series
is never logged twice; neither keeps checkpoint state, so two never clash on a state key.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List

ENVIRONMENT_VARIABLE = "WSE_CALLBACKS"


def _lr_monitor():
    from .lr_monitor import LearningRateMonitor

    monitor = LearningRateMonitor()
    monitor._defer_to_user_monitor = True
    return monitor


#: The callbacks ``WSE_CALLBACKS`` can name, each with the function that builds it.
FACTORIES: Dict[str, Callable[[], object]] = {"lr_monitor": _lr_monitor}


def requested_callbacks() -> List[str]:
    """The names in ``WSE_CALLBACKS`` (empty when unset); an unknown name raises ``ValueError``."""
    names = [name.strip() for name in os.environ.get(ENVIRONMENT_VARIABLE, "").split(",") if name.strip()]
    unknown = [name for name in names if name not in FACTORIES]
    if unknown:
        raise ValueError(
            f"{ENVIRONMENT_VARIABLE}={os.environ[ENVIRONMENT_VARIABLE]!r} names unknown callbacks {unknown}; known: "
            f"{sorted(FACTORIES)}. Set it to a comma-separated list of those, or unset it to add none."
        )
    return list(dict.fromkeys(names))


def lightning_callbacks() -> list:
    """Entry point of ``lightning.pytorch.callbacks_factory``: the callbacks ``WSE_CALLBACKS`` asks for."""
    return [FACTORIES[name]() for name in requested_callbacks()]


def pytorch_lightning_callbacks() -> list:
    """Entry point of ``pytorch_lightning.callbacks_factory``: the same callbacks, as ``pytorch_lightning`` callbacks."""
    names = requested_callbacks()
    if not names:
        return []
    import pytorch_lightning

    return [_as_pytorch_lightning(FACTORIES[name](), pytorch_lightning.Callback) for name in names]


_CLASSES: Dict[type, type] = {}


def _as_pytorch_lightning(callback, base: type):
    """The same callback, also an instance of ``pytorch_lightning.Callback`` (a separate copy of Lightning)."""
    cls = type(callback)
    mirrored = _CLASSES.get(cls)
    if mirrored is None:
        mirrored = _CLASSES[cls] = type(cls.__name__, (cls, base), {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
    callback.__class__ = mirrored
    return callback
