"""Prepared dataloaders fetch their batches beside the device step, never inside its graph.

With ``gradient_accumulation_steps=k`` one update, and so one device step, spans k
micro-batches: the loop fetches micro-batches 2 to k while the step is open. Loading is
the host's input pipeline (the user's ``Dataset.__getitem__``, the collate function),
which a static-graph device runs beside its graph, so each fetch runs with the device's
instruments set aside. Accelerate's loaders (``DataLoaderShard``,
``DataLoaderDispatcher``) iterate a torch ``DataLoader`` they hold as
``base_dataloader``; that one's class becomes a subclass whose iterator fetches outside
the step. Everything else about the loader is unchanged.
"""
from __future__ import annotations

from typing import Dict

_SUBCLASSES: Dict[type, type] = {}


class _FetchOutsideTheStep:
    """An iterator of a torch DataLoader whose every fetch runs in ``run.loading()``."""

    def __init__(self, batches, run):
        self._batches = batches
        self._run = run

    def __iter__(self):
        return self

    def __next__(self):
        if self._run.checks_open_step():
            with self._run.loading():
                return next(self._batches)
        return next(self._batches)

    def __len__(self):
        return len(self._batches)

    def __getattr__(self, name):
        return getattr(self._batches, name)


def _subclass(base: type) -> type:
    subclass = _SUBCLASSES.get(base)
    if subclass is None:

        def __iter__(self):
            return _FetchOutsideTheStep(base.__iter__(self), self._wse_run)

        namespace = {"__iter__": __iter__, "__module__": base.__module__, "__qualname__": base.__qualname__}
        subclass = _SUBCLASSES[base] = type(base.__name__, (base,), namespace)
    return subclass


def load_outside_the_step(loader, run):
    """Make ``loader`` fetch outside ``run``'s device steps; return it."""
    target = getattr(loader, "base_dataloader", loader)
    if type(target) not in _SUBCLASSES.values():
        target.__class__ = _subclass(type(target))
    target._wse_run = run
    return loader
