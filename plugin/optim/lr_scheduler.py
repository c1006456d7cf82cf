"""Learning-rate schedulers with the names and arguments of ``cerebras.pytorch.optim.lr_scheduler``.

Each is the generic scheduler of ``wse.optim.scheduler`` writing ``"lr"``, with the
learning-rate argument names (``initial_learning_rate`` for ``initial_val`` and so on).
They are ``torch.optim.lr_scheduler.LRScheduler`` instances, so Lightning, Accelerate
and torch utilities accept them, and they work on any ``torch.optim.Optimizer``.
Step them once per optimizer step.
"""
from __future__ import annotations

from typing import List, Optional

from . import _generic as G
from ._binding import Scheduler
from ._tags import TagSpec

# Generic argument name -> learning-rate argument name.
LR_NAMES = {
    "val": "learning_rate",
    "vals": "learning_rates",
    "initial_val": "initial_learning_rate",
    "end_val": "end_learning_rate",
    "base_val": "base_lr",
    "max_val": "max_lr",
}


class _Alias:
    """A generic attribute name stored under its learning-rate name."""

    def __init__(self, target: str):
        self.target = target

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        try:
            return instance.__dict__[self.target]
        except KeyError:
            raise AttributeError(self.target) from None

    def __set__(self, instance, value):
        setattr(instance, self.target, value)


class LRScheduler(Scheduler):
    """Base of the learning-rate schedulers: a ``Scheduler`` of the ``"lr"`` key."""

    _public_names = LR_NAMES

    @property
    def param_group_key(self) -> str:
        return "lr"

    def get_last_lr(self) -> List[float]:
        """Return last computed learning rate by current scheduler."""
        return self.get_last_value()

    def get_lr(self) -> List[float]:
        return self.get()


for _generic_name, _lr_name in LR_NAMES.items():
    setattr(LRScheduler, _generic_name, _Alias(_lr_name))


class ConstantLR(LRScheduler, G.ConstantScheduler):
    """Maintains a constant learning rate for each parameter group (no decaying).

    The value is ``learning_rate`` (the argument of cerebras-pytorch 2.10's code) or
    ``val`` (the name its documentation gives); pass one of them.
    """

    def __init__(
        self,
        optimizer,
        learning_rate: Optional[float] = None,
        total_iters: Optional[int] = None,
        param_group_tags: TagSpec = None,
        *,
        val: Optional[float] = None,
    ):
        if (learning_rate is None) == (val is None):
            given = "both" if val is not None else "neither"
            raise TypeError(
                f"ConstantLR: pass the constant as `learning_rate` or as `val` (two names for the same "
                f"argument), got {given}; pass exactly one, e.g. ConstantLR(optimizer, learning_rate=1e-3)."
            )
        value = learning_rate if val is None else val
        super().__init__(optimizer, value, total_iters, param_group_tags=param_group_tags)


class PolynomialLR(LRScheduler, G.PolynomialScheduler):
    __doc__ = G.PolynomialScheduler.__doc__

    def __init__(
        self,
        optimizer,
        initial_learning_rate: float,
        end_learning_rate: float,
        total_iters: int,
        power: float = 1.0,
        cycle: bool = False,
        param_group_tags: TagSpec = None,
    ):
        super().__init__(optimizer, initial_learning_rate, end_learning_rate, total_iters, power, cycle, param_group_tags)


class LinearLR(LRScheduler, G.LinearScheduler):
    """Alias for Polynomial LR scheduler with a power of 1."""

    def __init__(
        self,
        optimizer,
        initial_learning_rate: float,
        end_learning_rate: float,
        total_iters: int,
        cycle: bool = False,
        param_group_tags: TagSpec = None,
    ):
        super().__init__(optimizer, initial_learning_rate, end_learning_rate, total_iters, cycle, param_group_tags)


class ExponentialLR(LRScheduler, G.ExponentialScheduler):
    __doc__ = G.ExponentialScheduler.__doc__

    def __init__(
        self,
        optimizer,
        initial_learning_rate: float,
        total_iters: int,
        decay_rate: float,
        staircase: bool = False,
        param_group_tags: TagSpec = None,
    ):
        super().__init__(optimizer, initial_learning_rate, total_iters, decay_rate, staircase, param_group_tags)


class InverseExponentialTimeDecayLR(LRScheduler, G.InverseExponentialTimeDecayScheduler):
    __doc__ = G.InverseExponentialTimeDecayScheduler.__doc__

    def __init__(
        self,
        optimizer,
        initial_learning_rate: float,
        step_exponent: int,
        total_iters: int,
        decay_rate: float,
        staircase: bool = False,
        param_group_tags: TagSpec = None,
    ):
        super().__init__(optimizer, initial_learning_rate, step_exponent, total_iters, decay_rate, staircase, param_group_tags)


class InverseSquareRootDecayLR(LRScheduler, G.InverseSquareRootDecayScheduler):
    __doc__ = G.InverseSquareRootDecayScheduler.__doc__

    def __init__(
        self,
        optimizer,
        initial_learning_rate: float = 1.0,
        scale: float = 1.0,
        warmup_steps: int = 1.0,
        param_group_tags: TagSpec = None,
    ):
        super().__init__(optimizer, initial_learning_rate, scale, warmup_steps, param_group_tags)


class CosineDecayLR(LRScheduler, G.CosineDecayScheduler):
    __doc__ = G.CosineDecayScheduler.__doc__

    def __init__(
        self,
        optimizer,
        initial_learning_rate: float,
        end_learning_rate: float,
        total_iters: int,
        param_group_tags: TagSpec = None,
    ):
        super().__init__(optimizer, initial_learning_rate, end_learning_rate, total_iters, param_group_tags)


class SequentialLR(LRScheduler, G.SequentialScheduler):
    __doc__ = G.SequentialScheduler.__doc__

    def __init__(
        self,
        optimizer,
        schedulers: List[LRScheduler],
        milestones: List[int],
        last_epoch: int = -1,
        param_group_tags: TagSpec = None,
    ):
        super().__init__(optimizer, schedulers, milestones, last_epoch, param_group_tags)


class PiecewiseConstantLR(LRScheduler, G.PiecewiseConstantScheduler):
    """``learning_rates[k]`` from ``milestones[k-1]`` until ``milestones[k]``."""

    _constant_class = ConstantLR

    def __init__(self, optimizer, learning_rates: List[float], milestones: List[int], param_group_tags: TagSpec = None):
        super().__init__(optimizer, learning_rates, milestones, param_group_tags)


class MultiStepLR(LRScheduler, G.MultiStepScheduler):
    __doc__ = G.MultiStepScheduler.__doc__

    def __init__(self, optimizer, initial_learning_rate: float, gamma: float, milestones: List[int], param_group_tags: TagSpec = None):
        super().__init__(optimizer, initial_learning_rate, gamma, milestones, param_group_tags)


class StepLR(LRScheduler, G.StepScheduler):
    __doc__ = G.StepScheduler.__doc__

    def __init__(self, optimizer, initial_learning_rate: float, step_size: int, gamma: float, param_group_tags: TagSpec = None):
        super().__init__(optimizer, initial_learning_rate, step_size, gamma, param_group_tags)


class CosineAnnealingLR(LRScheduler, G.CosineAnnealingScheduler):
    __doc__ = G.CosineAnnealingScheduler.__doc__

    def __init__(self, optimizer, initial_learning_rate: float, T_max: int, eta_min: float = 0.0, param_group_tags: TagSpec = None):
        super().__init__(optimizer, initial_learning_rate, T_max, eta_min, param_group_tags)


class LambdaLR(LRScheduler, G.LambdaScheduler):
    __doc__ = G.LambdaScheduler.__doc__

    def __init__(self, optimizer, initial_learning_rate: float, param_group_tags: TagSpec = None):
        super().__init__(optimizer, initial_learning_rate, param_group_tags)


class CosineAnnealingWarmRestarts(LRScheduler, G.CosineAnnealingWarmRestartsScheduler):
    __doc__ = G.CosineAnnealingWarmRestartsScheduler.__doc__

    def __init__(
        self,
        optimizer,
        initial_learning_rate: float,
        T_0: int,
        T_mult: int = 1,
        eta_min: float = 0.0,
        param_group_tags: TagSpec = None,
    ):
        super().__init__(optimizer, initial_learning_rate, T_0, T_mult, eta_min, param_group_tags)


class MultiplicativeLR(LRScheduler, G.MultiplicativeScheduler):
    __doc__ = G.MultiplicativeScheduler.__doc__

    def __init__(self, optimizer, initial_learning_rate: float, coefficient: float, param_group_tags: TagSpec = None):
        super().__init__(optimizer, initial_learning_rate, coefficient, param_group_tags)


class ChainedLR(LRScheduler, G.ChainedScheduler):
    __doc__ = G.ChainedScheduler.__doc__

    def __init__(self, schedulers: List[LRScheduler], param_group_tags: TagSpec = None):
        super().__init__(schedulers, param_group_tags)


class ChainedScheduler(ChainedLR):
    """The name ``cerebras.pytorch.optim.lr_scheduler.ChainedScheduler`` for ``ChainedLR``."""


class CyclicLR(LRScheduler, G.CyclicScheduler):
    __doc__ = G.CyclicScheduler.__doc__

    def __init__(
        self,
        optimizer,
        base_lr: float,
        max_lr: float,
        step_size_up: int = 2000,
        step_size_down: Optional[int] = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_mode: str = "cycle",
        param_group_tags: TagSpec = None,
    ):
        super().__init__(optimizer, base_lr, max_lr, step_size_up, step_size_down, mode, gamma, scale_mode, param_group_tags)


class OneCycleLR(LRScheduler, G.OneCycleScheduler):
    __doc__ = G.OneCycleScheduler.__doc__

    def __init__(
        self,
        optimizer,
        initial_learning_rate: float,
        max_lr: float,
        total_steps: int = 1000,
        pct_start: float = 0.3,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        anneal_strategy: str = "cos",
        param_group_tags: TagSpec = None,
    ):
        super().__init__(
            optimizer, initial_learning_rate, max_lr, total_steps, pct_start, final_div_factor, three_phase, anneal_strategy, param_group_tags
        )


class ScalePerParamLR(LRScheduler, G.ScalePerParamScheduler):
    __doc__ = G.ScalePerParamScheduler.__doc__

    def __init__(self, optimizer, scheduler: LRScheduler, param_group_tags: TagSpec = None):
        super().__init__(optimizer, scheduler, param_group_tags)


__all__ = [
    "LRScheduler",
    "ConstantLR",
    "PolynomialLR",
    "LinearLR",
    "ExponentialLR",
    "InverseExponentialTimeDecayLR",
    "InverseSquareRootDecayLR",
    "CosineDecayLR",
    "SequentialLR",
    "PiecewiseConstantLR",
    "MultiStepLR",
    "StepLR",
    "CosineAnnealingLR",
    "LambdaLR",
    "CosineAnnealingWarmRestarts",
    "MultiplicativeLR",
    "ChainedLR",
    "ChainedScheduler",
    "CyclicLR",
    "OneCycleLR",
    "ScalePerParamLR",
]
