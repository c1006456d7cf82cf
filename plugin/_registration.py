"""Register strategy "wse" with Lightning as soon as Lightning is imported, not before.

Importing Lightning costs seconds; a user of the schedules, the optimizers, the
Accelerate integration or the ``wse`` command should not pay it. So ``import wse``
registers the strategy at once if ``lightning.pytorch`` is already imported, and
otherwise hooks the import of ``lightning.pytorch`` to register right after it runs:
either way ``lightning.Trainer(strategy="wse")`` finds it.
"""
from __future__ import annotations

import importlib.abc
import sys

_WATCHED = "lightning.pytorch"


def _register() -> None:
    # The strategy module, not the `wse.lightning` package: when that package is what
    # imports Lightning, it is still half-initialised when this runs.
    from lightning.pytorch.strategies import StrategyRegistry

    from .lightning.strategy import WSEStrategy

    WSEStrategy.register_strategies(StrategyRegistry)


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the real loader of ``lightning.pytorch``."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _WATCHED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                break
        else:
            return None
        run_module = spec.loader.exec_module

        def exec_module(module):
            run_module(module)
            _uninstall()
            _register()

        spec.loader.exec_module = exec_module
        return spec


_finder = _RegisterAfterImport()


def _uninstall() -> None:
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)


def register_when_lightning_is_imported() -> None:
    """Register now if Lightning is loaded, else right after it is (idempotent)."""
    if _WATCHED in sys.modules:
        _register()
    elif _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
