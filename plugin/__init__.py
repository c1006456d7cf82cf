"""wse: train under the rules of a static-graph accelerator, on any CPU or GPU."""
__version__ = "0.1.0"

# Importing wse makes `lightning.Trainer(strategy="wse")` available.
from .lightning import WSEStrategy, register_strategy as _register_strategy

_register_strategy()
