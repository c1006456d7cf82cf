"""The multi-tensor kernels of the wse optimizers, one function per algorithm.

Each kernel updates one bucket (tensors on one device with one dtype) in place with
``torch._foreach_*`` operations, as ``torch.optim``'s foreach kernels do. Per-parameter
scalar state (``step``, ``beta1_power``...) comes in as one vector with an entry per
parameter. Hyperparameters may be Python numbers or 0-d tensors; a tensor is never read
back to the host, so a compiled step that reads a scheduled value is compiled once.
The classes in ``wse.optim`` gather the buckets and call these.
"""
from .adadelta import adadelta
from .adafactor import adafactor
from .adagrad import adagrad
from .adam import adam
from .adamax import adamax
from .asgd import asgd
from .lamb import lamb
from .lion import lion
from .nadam import nadam
from .radam import radam
from .rmsprop import rmsprop
from .rprop import rprop
from .sgd import sgd

__all__ = [
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "asgd",
    "lamb",
    "lion",
    "nadam",
    "radam",
    "rmsprop",
    "rprop",
    "sgd",
]
