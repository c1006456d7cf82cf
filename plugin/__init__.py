"""wse: train under the rules of a static-graph accelerator, on any CPU or GPU."""
__version__ = "0.1.0"
