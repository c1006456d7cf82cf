"""Weight-decay schedulers with the names and arguments of ``cerebras.pytorch.optim.weight_decay_scheduler``.

Each is the generic scheduler of ``wse.optim.scheduler`` writing ``"weight_decay"``,
with the generic argument names (``initial_val``, ``end_val``, ...). Step them once per
optimizer step, like the learning-rate schedulers.
"""
from __future__ import annotations

from . import _generic as G
from ._binding import Scheduler


class WeightDecayScheduler(Scheduler):
    """Base of the weight-decay schedulers: a ``Scheduler`` of the ``"weight_decay"`` key."""

    @property
    def param_group_key(self) -> str:
        return "weight_decay"


def _wd(generic: type, name: str) -> type:
    """The weight-decay scheduler of a generic class: same arguments, key ``weight_decay``."""
    return type(name, (WeightDecayScheduler, generic), {"__doc__": generic.__doc__, "__module__": __name__})


ConstantWD = _wd(G.ConstantScheduler, "ConstantWD")
PolynomialWD = _wd(G.PolynomialScheduler, "PolynomialWD")
LinearWD = _wd(G.LinearScheduler, "LinearWD")
ExponentialWD = _wd(G.ExponentialScheduler, "ExponentialWD")
InverseExponentialTimeDecayWD = _wd(G.InverseExponentialTimeDecayScheduler, "InverseExponentialTimeDecayWD")
InverseSquareRootDecayWD = _wd(G.InverseSquareRootDecayScheduler, "InverseSquareRootDecayWD")
CosineDecayWD = _wd(G.CosineDecayScheduler, "CosineDecayWD")
SequentialWD = _wd(G.SequentialScheduler, "SequentialWD")
PiecewiseConstantWD = _wd(G.PiecewiseConstantScheduler, "PiecewiseConstantWD")
PiecewiseConstantWD._constant_class = ConstantWD
MultiStepWD = _wd(G.MultiStepScheduler, "MultiStepWD")
StepWD = _wd(G.StepScheduler, "StepWD")
CosineAnnealingWD = _wd(G.CosineAnnealingScheduler, "CosineAnnealingWD")
LambdaWD = _wd(G.LambdaScheduler, "LambdaWD")
CosineAnnealingWarmRestartsWD = _wd(G.CosineAnnealingWarmRestartsScheduler, "CosineAnnealingWarmRestartsWD")
MultiplicativeWD = _wd(G.MultiplicativeScheduler, "MultiplicativeWD")
ChainedWD = _wd(G.ChainedScheduler, "ChainedWD")
CyclicWD = _wd(G.CyclicScheduler, "CyclicWD")
OneCycleWD = _wd(G.OneCycleScheduler, "OneCycleWD")
ScalePerParamWD = _wd(G.ScalePerParamScheduler, "ScalePerParamWD")

__all__ = [
    "WeightDecayScheduler",
    "ConstantWD",
    "PolynomialWD",
    "LinearWD",
    "ExponentialWD",
    "InverseExponentialTimeDecayWD",
    "InverseSquareRootDecayWD",
    "CosineDecayWD",
    "SequentialWD",
    "PiecewiseConstantWD",
    "MultiStepWD",
    "StepWD",
    "CosineAnnealingWD",
    "LambdaWD",
    "CosineAnnealingWarmRestartsWD",
    "MultiplicativeWD",
    "ChainedWD",
    "CyclicWD",
    "OneCycleWD",
    "ScalePerParamWD",
]
