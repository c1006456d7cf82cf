"""wse: train under the rules of a static-graph accelerator, on any CPU or GPU."""
import importlib
import importlib.util

from ._registration import register_when_lightning_is_imported

__version__ = "0.1.0"

# Makes `lightning.Trainer(strategy="wse")` available, without importing Lightning here.
register_when_lightning_is_imported()


def __getattr__(name):
    # Subpackages (`wse.optim`, `wse.schedules`, `wse.lightning`, ...) and `wse.WSEStrategy`
    # are imported when first used, so that `import wse` stays cheap and imports Lightning
    # only for what needs it.
    if name == "WSEStrategy":
        from .lightning import WSEStrategy

        return WSEStrategy
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'wse' has no attribute {name!r}")
