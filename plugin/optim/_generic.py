"""The generic schedulers of ``cerebras.pytorch.optim.scheduler``, for any param-group key.

Each class turns its arguments into a ``wse.schedules`` value; the LR and WD families
are these classes with a key and, for LR, the learning-rate argument names.

Where the published implementation contradicts its own documentation, these follow the
documentation (each case is named in the class docstring):

* ``PolynomialScheduler(cycle=True)`` cycles (the published one holds ``end_val``);
* ``LambdaScheduler`` multiplies ``initial_val`` once by the product of the lambdas (the
  published one multiplies by ``initial_val`` once per lambda);
* ``CosineAnnealingWarmRestartsScheduler`` restarts every ``T_i`` steps and accepts an
  integer ``T_mult`` (the published one alternates between the two ends after the first
  period and refuses ``T_mult != 1``).
"""
from __future__ import annotations

from typing import List, Optional

import torch

from .. import schedules as S
from ..schedules import base as checks
from ._binding import Scheduler
from ._tags import TagSpec


class ConstantScheduler(Scheduler):
    """Maintains a constant value for each parameter group (no decaying)."""

    def __init__(self, optimizer, val: float, total_iters: Optional[int] = None, param_group_tags: TagSpec = None):
        self._require(checks.require_finite, val=val)
        if total_iters is not None:
            self._require(checks.require_positive_int, total_iters=total_iters)
        self.val = val
        super().__init__(optimizer, total_iters=total_iters, param_group_tags=param_group_tags)

    def _build_schedule(self):
        return S.Constant(self.val)

    def _chain_divisor(self):
        return self.val


class PolynomialScheduler(Scheduler):
    """Decays from ``initial_val`` to ``end_val`` by a polynomial of ``power`` over ``total_iters``.

    With ``cycle=True`` the decay restarts every ``total_iters`` steps over a horizon
    stretched to the next multiple of ``total_iters`` (Keras ``PolynomialDecay``); the
    published implementation accepts ``cycle`` but never cycles.
    """

    def __init__(
        self,
        optimizer,
        initial_val: float,
        end_val: float,
        total_iters: int,
        power: float = 1.0,
        cycle: bool = False,
        param_group_tags: TagSpec = None,
    ):
        self._require(checks.require_finite, initial_val=initial_val, end_val=end_val, power=power)
        self._require(checks.require_positive_int, total_iters=total_iters)
        self.initial_val, self.end_val, self.power, self.cycle = initial_val, end_val, power, cycle
        super().__init__(optimizer, total_iters=total_iters, param_group_tags=param_group_tags)

    def _build_schedule(self):
        return S.Polynomial(self.initial_val, self.end_val, self.total_iters, self.power, self.cycle)


class LinearScheduler(PolynomialScheduler):
    """Alias for the polynomial scheduler with a power of 1."""

    def __init__(self, optimizer, initial_val: float, end_val: float, total_iters: int, cycle: bool = False, param_group_tags: TagSpec = None):
        super().__init__(optimizer, initial_val, end_val, total_iters, power=1.0, cycle=cycle, param_group_tags=param_group_tags)


class ExponentialScheduler(Scheduler):
    """``initial_val * decay_rate ** (step / total_iters)``, floored if ``staircase``."""

    def __init__(self, optimizer, initial_val: float, total_iters: int, decay_rate: float, staircase: bool = False, param_group_tags: TagSpec = None):
        self._require(checks.require_finite, initial_val=initial_val)
        self._require(checks.require_non_negative, decay_rate=decay_rate)
        self._require(checks.require_positive_int, total_iters=total_iters)
        self.initial_val, self.decay_rate, self.staircase = float(initial_val), decay_rate, staircase
        super().__init__(optimizer, total_iters=total_iters, param_group_tags=param_group_tags)

    def _build_schedule(self):
        return S.Exponential(self.initial_val, self.total_iters, self.decay_rate, self.staircase)


class InverseExponentialTimeDecayScheduler(Scheduler):
    """``initial_val / (1 + decay_rate * step ** step_exponent / total_iters)`` (Keras InverseTimeDecay)."""

    def __init__(
        self,
        optimizer,
        initial_val: float,
        step_exponent: int,
        total_iters: int,
        decay_rate: float,
        staircase: bool = False,
        param_group_tags: TagSpec = None,
    ):
        self._require(checks.require_finite, initial_val=initial_val)
        self._require(checks.require_non_negative, step_exponent=step_exponent, decay_rate=decay_rate)
        self._require(checks.require_positive_int, total_iters=total_iters)
        self.initial_val, self.step_exponent = initial_val, step_exponent
        self.decay_rate, self.staircase = decay_rate, staircase
        super().__init__(optimizer, total_iters=total_iters, param_group_tags=param_group_tags)

    def _build_schedule(self):
        return S.InverseTimeDecay(self.initial_val, self.step_exponent, self.total_iters, self.decay_rate, self.staircase)


class InverseSquareRootDecayScheduler(Scheduler):
    """``initial_val * scale / sqrt(max(step, warmup_steps))``.

    ``warmup_steps`` must be > 0: at 0 the value at step 0 would be infinite.
    """

    def __init__(self, optimizer, initial_val: float = 1.0, scale: float = 1.0, warmup_steps: int = 1.0, param_group_tags: TagSpec = None):
        self._require(checks.require_finite, initial_val=initial_val, scale=scale)
        self._require(checks.require_positive, warmup_steps=warmup_steps)
        self.initial_val, self.scale, self.warmup_steps = initial_val, scale, warmup_steps
        super().__init__(optimizer, total_iters=None, param_group_tags=param_group_tags)

    def _build_schedule(self):
        return S.InverseSquareRoot(self.initial_val, self.scale, self.warmup_steps)


class CosineDecayScheduler(Scheduler):
    """Half a cosine from ``initial_val`` to ``end_val`` over ``total_iters``, then ``end_val``."""

    def __init__(self, optimizer, initial_val: float, end_val: float, total_iters: int, param_group_tags: TagSpec = None):
        self._require(checks.require_finite, initial_val=initial_val, end_val=end_val)
        self._require(checks.require_positive_int, total_iters=total_iters)
        self.initial_val, self.end_val = initial_val, end_val
        super().__init__(optimizer, total_iters=total_iters, param_group_tags=param_group_tags)

    def _build_schedule(self):
        return S.CosineDecay(self.initial_val, self.end_val, self.total_iters)


class MultiStepScheduler(Scheduler):
    """Multiplies ``initial_val`` by ``gamma`` at each of the increasing ``milestones``."""

    def __init__(self, optimizer, initial_val: float, gamma: float, milestones: List[int], param_group_tags: TagSpec = None):
        self._require(checks.require_finite, initial_val=initial_val, gamma=gamma)
        checks.require_increasing(type(self).__name__, "milestones", list(milestones))
        self.initial_val, self.gamma, self.milestones = initial_val, gamma, list(milestones)
        super().__init__(optimizer, total_iters=None, param_group_tags=param_group_tags)

    def _build_schedule(self):
        return S.MultiStep(self.initial_val, self.gamma, tuple(self.milestones))


class StepScheduler(Scheduler):
    """Multiplies ``initial_val`` by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer, initial_val: float, step_size: int, gamma: float, param_group_tags: TagSpec = None):
        self._require(checks.require_finite, initial_val=initial_val, gamma=gamma)
        self._require(checks.require_positive_int, step_size=step_size)
        self.initial_val, self.step_size, self.gamma = float(initial_val), step_size, gamma
        super().__init__(optimizer, total_iters=None, param_group_tags=param_group_tags)

    def _build_schedule(self):
        return S.Step(self.initial_val, self.step_size, self.gamma)


class CosineAnnealingScheduler(Scheduler):
    """SGDR's cosine annealing without restarts (closed form of torch's ``CosineAnnealingLR``)."""

    def __init__(self, optimizer, initial_val: float, T_max: int, eta_min: float = 0.0, param_group_tags: TagSpec = None):
        self._require(checks.require_finite, initial_val=initial_val, eta_min=eta_min)
        self._require(checks.require_positive_int, T_max=T_max)
        self.initial_val, self.T_max, self.eta_min = float(initial_val), float(T_max), eta_min
        super().__init__(optimizer, total_iters=None, param_group_tags=param_group_tags)

    def _build_schedule(self):
        return S.CosineAnnealing(self.initial_val, self.T_max, self.eta_min)


class LambdaScheduler(Scheduler):
    """``initial_val`` times the product of the functions returned by ``set_value_lambda``.

    Override ``set_value_lambda`` to return one function of the step or a list of them;
    each receives the step as a float (host values) or a tensor (tensor values). The
    default is the documented example, ``[step / 30, 0.95 ** step]``. ``initial_val``
    multiplies the product once, as documented; the published implementation multiplies
    it in once per function.
    """

    def __init__(self, optimizer, initial_val: float, param_group_tags: TagSpec = None):
        self._require(checks.require_finite, initial_val=initial_val)
        self.initial_val = initial_val
        super().__init__(optimizer, total_iters=None, param_group_tags=param_group_tags)

    def set_value_lambda(self):
        """The functions of the step whose product scales ``initial_val``."""
        return [lambda step: step / 30, lambda step: 0.95**step]

    def _build_schedule(self):
        factors = self.set_value_lambda()
        return S.Lambda(self.initial_val, tuple(factors) if isinstance(factors, (list, tuple)) else (factors,))


class CosineAnnealingWarmRestartsScheduler(Scheduler):
    """SGDR: cosine annealing restarted every ``T_i`` steps, ``T_i`` growing by ``T_mult``.

    Matches torch's ``CosineAnnealingWarmRestarts``. The published Cerebras
    implementation restricts ``T_mult`` to 1 and, past the first period, computes the
    position in the period wrongly; this follows the documented formula.
    """

    def __init__(
        self, optimizer, initial_val: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0, param_group_tags: TagSpec = None
    ):
        self._require(checks.require_finite, initial_val=initial_val, eta_min=eta_min)
        self._require(checks.require_positive_int, T_0=T_0, T_mult=T_mult)
        self.initial_val, self.T_0, self.T_mult, self.eta_min = float(initial_val), T_0, T_mult, eta_min
        super().__init__(optimizer, total_iters=None, param_group_tags=param_group_tags)

    def _build_schedule(self):
        return S.CosineWarmRestarts(self.initial_val, self.T_0, self.T_mult, self.eta_min)


class MultiplicativeScheduler(Scheduler):
    """``initial_val * coefficient ** step``: multiplied by ``coefficient`` every step."""

    def __init__(self, optimizer, initial_val: float, coefficient: float, param_group_tags: TagSpec = None):
        self._require(checks.require_finite, initial_val=initial_val, coefficient=coefficient)
        self.initial_val, self.coefficient = initial_val, coefficient
        super().__init__(optimizer, total_iters=None, param_group_tags=param_group_tags)

    def _build_schedule(self):
        return S.Multiplicative(self.initial_val, self.coefficient)


class CyclicScheduler(Scheduler):
    """Cyclical values between ``base_val`` and ``max_val`` (torch's ``CyclicLR``).

    ``mode`` decides the amplitude law and, as in torch, the scale mode: ``triangular``
    and ``triangular2`` scale per cycle, ``exp_range`` per iteration.
    """

    def __init__(
        self,
        optimizer,
        base_val: float,
        max_val: float,
        step_size_up: int = 2000,
        step_size_down: Optional[int] = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_mode: str = "cycle",
        param_group_tags: TagSpec = None,
    ):
        self._require(checks.require_finite, base_val=base_val, max_val=max_val, gamma=gamma)
        self._require(checks.require_positive_int, step_size_up=step_size_up)
        if step_size_down is not None:
            self._require(checks.require_positive_int, step_size_down=step_size_down)
        if mode not in S.cyclic.CYCLIC_MODES:
            raise ValueError(f"{type(self).__name__}: `mode` must be one of {S.cyclic.CYCLIC_MODES}, got {mode!r}.")
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"{type(self).__name__}: `scale_mode` must be 'cycle' or 'iterations', got {scale_mode!r}.")
        self.base_val, self.max_val = base_val, max_val
        self.step_size_up = step_size_up
        self.step_size_down = step_size_up if step_size_down is None else step_size_down
        self.mode, self.gamma = mode, gamma
        self.scale_mode = "iterations" if mode == "exp_range" else "cycle"
        super().__init__(optimizer, total_iters=None, param_group_tags=param_group_tags)

    def _build_schedule(self):
        return S.Cyclic(self.base_val, self.max_val, self.step_size_up, self.step_size_down, self.mode, self.gamma)

    def _chain_divisor(self):
        return self.base_val


class OneCycleScheduler(Scheduler):
    """The 1cycle policy from ``initial_val`` up to ``max_val`` and down to ``initial_val / final_div_factor``."""

    def __init__(
        self,
        optimizer,
        initial_val: float,
        max_val: float,
        total_steps: int = 1000,
        pct_start: float = 0.3,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        anneal_strategy: str = "cos",
        param_group_tags: TagSpec = None,
    ):
        self._require(checks.require_finite, initial_val=initial_val, max_val=max_val)
        self._require(checks.require_positive_int, total_steps=total_steps)
        self._require(checks.require_positive, final_div_factor=final_div_factor)
        self.initial_val, self.max_val, self.total_steps = initial_val, max_val, total_steps
        self.pct_start, self.final_div_factor = pct_start, final_div_factor
        self.three_phase, self.anneal_strategy = three_phase, anneal_strategy
        try:
            self._build_schedule()
        except ValueError as error:
            raise ValueError(f"{type(self).__name__}: {error}") from None
        super().__init__(optimizer, total_iters=None, param_group_tags=param_group_tags)

    def _build_schedule(self):
        return S.OneCycle(
            self.initial_val,
            self.max_val,
            self.total_steps,
            self.pct_start,
            self.final_div_factor,
            self.three_phase,
            self.anneal_strategy,
        )


class _CompositeScheduler(Scheduler):
    """A scheduler made of child schedulers of the same key, optimizer and tags."""

    _schedulers: list

    def _check_children(self):
        name = type(self).__name__
        for index, child in enumerate(self._schedulers):
            if not isinstance(child, Scheduler):
                raise TypeError(f"{name}: schedulers[{index}] is a {type(child).__name__}, not a wse scheduler.")
            if child.optimizer is not self.optimizer:
                raise ValueError(f"{name}: schedulers[{index}] belongs to a different optimizer.")
            if child.param_group_key != self.param_group_key:
                raise ValueError(
                    f"{name}: schedulers[{index}] schedules {child.param_group_key!r}, not {self.param_group_key!r}."
                )
            if child.param_group_tags != self.param_group_tags:
                raise ValueError(
                    f"{name}: schedulers[{index}] has `param_group_tags` {child.param_group_tags}, "
                    f"but {name} has {self.param_group_tags}; they must be the same."
                )

    def _child_steps(self) -> List[int]:
        return [self.last_epoch for _ in self._schedulers]

    def state_dict(self):
        state = super().state_dict()
        state["_schedulers"] = []
        for child, step in zip(self._schedulers, self._child_steps()):
            child_state = child.state_dict()
            child_state["last_epoch"] = torch.tensor(step)
            state["_schedulers"].append(child_state)
        return state

    def load_state_dict(self, state_dict):
        for child, child_state in zip(self._schedulers, state_dict.get("_schedulers", [])):
            for name in child._hyperparameter_names():
                if name in child_state:
                    setattr(child, name, child_state[name])
            child._schedule = child._build_schedule()
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "_schedulers"})


class SequentialScheduler(_CompositeScheduler):
    """Runs ``schedulers[k]`` from ``milestones[k-1]`` on, each from its own step 0.

    ``milestones`` are absolute steps and must be strictly increasing, one fewer than
    the schedulers.
    """

    def __init__(self, optimizer, schedulers: List[Scheduler], milestones: List[int], last_epoch: int = -1, param_group_tags: TagSpec = None):
        name = type(self).__name__
        if not schedulers:
            raise ValueError(f"{name}: `schedulers` is empty; give at least one scheduler.")
        milestones = milestones.tolist() if hasattr(milestones, "tolist") else list(milestones)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"{name}: expected one milestone fewer than schedulers, got {len(schedulers)} schedulers "
                f"and {len(milestones)} milestones ({milestones})."
            )
        checks.require_increasing(name, "milestones", milestones)
        self._schedulers = list(schedulers)
        self._milestones = [int(m) for m in milestones]
        super().__init__(optimizer, total_iters=None, last_epoch=last_epoch, param_group_tags=param_group_tags)

    def _build_schedule(self):
        return S.Sequential(tuple(child.schedule for child in self._schedulers), tuple(self._milestones))

    def _child_steps(self):
        offsets = [0] + self._milestones
        return [self.last_epoch] + [max(0, self.last_epoch - m) for m in offsets[1:]]

    def state_dict(self):
        state = super().state_dict()
        state["_milestones"] = list(self._milestones)
        return state

    def load_state_dict(self, state_dict):
        if "_milestones" in state_dict:
            self._milestones = [int(m) for m in state_dict["_milestones"]]
        super().load_state_dict(state_dict)


class PiecewiseConstantScheduler(SequentialScheduler):
    """``vals[k]`` from ``milestones[k-1]`` until ``milestones[k]``; one more value than milestones."""

    def __init__(self, optimizer, vals: List[float], milestones: List[int], param_group_tags: TagSpec = None):
        name = type(self).__name__
        vals, milestones = list(vals), list(milestones)
        if len(vals) != len(milestones) + 1:
            raise ValueError(
                f"{name}: expected exactly one more value than milestones, got {len(vals)} values and "
                f"{len(milestones)} milestones."
            )
        checks.require_increasing(name, "milestones", milestones)
        for value in vals:
            self._require(checks.require_finite, vals=value)
        self.vals = vals
        self.milestones = milestones
        constant = self._constant_class
        children = [constant(optimizer, v, param_group_tags=param_group_tags) for v in vals]
        super().__init__(optimizer, children, milestones, param_group_tags=param_group_tags)

    # The constant scheduler of the same family (same key), set by each family.
    _constant_class: type = None


class ChainedScheduler(_CompositeScheduler):
    """Multiplies the first scheduler's value by every other's value relative to its start.

    ``value = s0(t) * s1(t) / s1.initial_val * s2(t) / s2.initial_val * ...``
    """

    def __init__(self, schedulers: List[Scheduler], param_group_tags: TagSpec = None):
        name = type(self).__name__
        if not schedulers:
            raise ValueError(f"{name}: `schedulers` is empty; give at least one scheduler.")
        self._schedulers = list(schedulers)
        for index, child in enumerate(self._schedulers[1:], start=1):
            divisor = child._chain_divisor() if isinstance(child, Scheduler) else None
            if not divisor:
                raise ValueError(
                    f"{name}: schedulers[{index}] ({type(child).__name__}) starts at 0, so it cannot be "
                    f"chained as a relative factor."
                )
        super().__init__(self._schedulers[0].optimizer, total_iters=None, param_group_tags=param_group_tags)

    def _build_schedule(self):
        first, *rest = self._schedulers
        factors = [first.schedule] + [S.Scale(child.schedule, 1.0 / child._chain_divisor()) for child in rest]
        return S.Product(tuple(factors))


class ScalePerParamScheduler(Scheduler):
    """Scales a wrapped scheduler's value per param group.

    Each group's factor is its ``adjust_learning_rate`` entry, else its ``adjust_val``
    entry, else 1 (the Maximal Update Parametrisation per-layer scaling).
    """

    def __init__(self, optimizer, scheduler: Scheduler, param_group_tags: TagSpec = None):
        if not isinstance(scheduler, Scheduler):
            raise TypeError(f"{type(self).__name__}: `scheduler` must be a wse scheduler, got {type(scheduler).__name__}.")
        self._scheduler_nested = scheduler
        self.adjustment_scalars = [
            group.get("adjust_learning_rate", group.get("adjust_val", 1.0)) for group in optimizer.param_groups
        ]
        super().__init__(optimizer, total_iters=None, param_group_tags=param_group_tags)

    def _check_children(self):
        if self._scheduler_nested.param_group_tags != self.param_group_tags:
            raise ValueError(
                f"{type(self).__name__}: the wrapped scheduler has `param_group_tags` "
                f"{self._scheduler_nested.param_group_tags}, but this one has {self.param_group_tags}."
            )

    def _build_schedule(self):
        return self._scheduler_nested.schedule

    def _group_scales(self):
        groups = self.optimizer.param_groups
        # Groups added after construction bring their own factor.
        self.adjustment_scalars = list(self.adjustment_scalars) + [
            group.get("adjust_learning_rate", group.get("adjust_val", 1.0))
            for group in groups[len(self.adjustment_scalars):]
        ]
        return [
            None if not self._should_apply_to_param_group(group) else float(scale)
            for group, scale in zip(self.optimizer.param_groups, self.adjustment_scalars)
        ]

    def state_dict(self):
        state = super().state_dict()
        state["_scheduler"] = self._scheduler_nested.state_dict()
        return state

    def load_state_dict(self, state_dict):
        if "_scheduler" in state_dict:
            nested = state_dict["_scheduler"]
            for name in self._scheduler_nested._hyperparameter_names():
                if name in nested:
                    setattr(self._scheduler_nested, name, nested[name])
            self._scheduler_nested._schedule = None
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "_scheduler"})
