"""Schedules as values: pure closed-form functions of the step, and combinators.

Every schedule evaluates on a Python number (a float, cheaply) or on a tensor (a
tensor, in-graph, without host synchronisation)::

    from wse.schedules import CosineDecay, Polynomial, Sequential
    warmup_then_decay = Sequential(
        (Polynomial(0.0, 1e-3, total_steps=100), CosineDecay(1e-3, 1e-5, total_steps=900)),
        milestones=(100,),
    )
    warmup_then_decay(250)                  # -> float
    warmup_then_decay(torch.tensor(250))    # -> 0-d tensor, same formula

The stateful schedulers of every face (``wse.optim``, ``wse.compat``) are thin bindings
of these values to an optimizer's param groups.
"""
from .base import Schedule
from .cyclic import CosineWarmRestarts, Cyclic, OneCycle
from .decay import (
    Constant,
    CosineAnnealing,
    CosineDecay,
    Exponential,
    InverseSquareRoot,
    InverseTimeDecay,
    Lambda,
    Multiplicative,
    MultiStep,
    Polynomial,
    Step,
)
from .join import Product, Scale, Sequential, Shift, piecewise_constant
from .anneal import Anneal, Ramp
from .warmup_anneal import WarmupAnneal
from .warmup_stable_decay import WarmupStableDecay, decay_periods, geometric_checkpoints

__all__ = [
    "Schedule",
    "Constant",
    "Polynomial",
    "Exponential",
    "InverseTimeDecay",
    "InverseSquareRoot",
    "CosineDecay",
    "CosineAnnealing",
    "MultiStep",
    "Step",
    "Multiplicative",
    "Lambda",
    "Cyclic",
    "OneCycle",
    "CosineWarmRestarts",
    "Sequential",
    "Product",
    "Scale",
    "Shift",
    "piecewise_constant",
    "Anneal",
    "Ramp",
    "WarmupAnneal",
    "WarmupStableDecay",
    "geometric_checkpoints",
    "decay_periods",
]
