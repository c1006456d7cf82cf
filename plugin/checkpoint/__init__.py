"""Checkpoint migration: read any supported format into one hub form and write any other.

``detect(path)`` names a path's format; ``load``/``save`` go between a path and the hub's
``Checkpoint``; ``convert(src, dst, to=...)`` does both, with optimizer-state translation.
Formats: torch, safetensors, lightning, hf, hf-trainer, accelerate, cerebras.
The names below load on first use, so ``import wse.checkpoint`` does not import torch.
"""
from __future__ import annotations

_API = {
    "detect": "._api",
    "load": "._api",
    "save": "._api",
    "convert": "._api",
    "Checkpoint": ".hub",
    "OptimizerState": ".hub",
    "LazyStateDict": ".hub",
    "CheckpointError": ".hub",
}

__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        import importlib

        value = getattr(importlib.import_module(_API[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'wse.checkpoint' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))
