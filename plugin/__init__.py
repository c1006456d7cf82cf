"""wse: train under the rules of a static-graph accelerator, on any CPU or GPU."""
from ._registration import register_when_lightning_is_imported

__version__ = "0.1.0"

# Makes `lightning.Trainer(strategy="wse")` available, without importing Lightning here.
register_when_lightning_is_imported()


def __getattr__(name):
    # `wse.WSEStrategy` imports Lightning only when asked for.
    if name == "WSEStrategy":
        from .lightning import WSEStrategy

        return WSEStrategy
    raise AttributeError(f"module 'wse' has no attribute {name!r}")
