"""The two arithmetics a schedule runs on: Python floats (host) and 0-d tensors (in-graph).

A schedule's formula is written once against the small vocabulary below. On the host
path every call is a ``math`` function on floats, which is what makes eager stepping
cheap. On the tensor path every call is a torch op on the step tensor, so evaluating a
schedule never reads a value back to the host and never branches in Python on a value:
a compiled graph that contains it does not change when the step changes.

Branching is the one place where the two differ in strategy, not in meaning:
``piecewise`` evaluates only the active branch on the host (an inactive branch may be
undefined there, e.g. a negative local step under a square root) and evaluates every
branch and selects with ``torch.where`` on a tensor.
"""
from __future__ import annotations

import bisect
import math
from typing import Callable, Sequence

import torch


class HostMath:
    """Scalar arithmetic on Python floats."""

    is_tensor = False
    cos = staticmethod(math.cos)
    sqrt = staticmethod(math.sqrt)
    log = staticmethod(math.log)
    exp = staticmethod(math.exp)
    pi = math.pi

    @staticmethod
    def const(t: float, value: float) -> float:
        return float(value)

    @staticmethod
    def floor(x: float) -> float:
        return float(math.floor(x))

    @staticmethod
    def ceil(x: float) -> float:
        return float(math.ceil(x))

    @staticmethod
    def pow(base, exponent) -> float:
        try:
            return math.pow(base, exponent)
        except OverflowError:
            # Saturate to infinity as torch does, rather than stop the training loop.
            odd = float(exponent).is_integer() and int(exponent) % 2 == 1
            return -math.inf if base < 0 and odd else math.inf

    @staticmethod
    def minimum(x: float, bound: float) -> float:
        return x if x < bound else float(bound)

    @staticmethod
    def maximum(x: float, bound: float) -> float:
        return x if x > bound else float(bound)

    @staticmethod
    def where(condition: bool, if_true, if_false):
        return if_true if condition else if_false

    @staticmethod
    def count_reached(t: float, boundaries: Sequence[float]) -> float:
        """How many of the increasing ``boundaries`` are <= t."""
        return float(bisect.bisect_right(boundaries, t))

    @staticmethod
    def piecewise(t: float, boundaries: Sequence[float], branch: Callable, after: bool = False):
        """``branch(k, t)`` where k counts the ``boundaries`` <= t (< t if ``after``)."""
        index = bisect.bisect_left(boundaries, t) if after else bisect.bisect_right(boundaries, t)
        return branch(index, t)


class TensorMath:
    """The same vocabulary as torch ops on a 0-d floating tensor."""

    is_tensor = True
    cos = staticmethod(torch.cos)
    sqrt = staticmethod(torch.sqrt)
    log = staticmethod(torch.log)
    exp = staticmethod(torch.exp)
    floor = staticmethod(torch.floor)
    ceil = staticmethod(torch.ceil)
    pow = staticmethod(torch.pow)
    where = staticmethod(torch.where)
    pi = math.pi

    @staticmethod
    def const(t: torch.Tensor, value: float) -> torch.Tensor:
        return torch.full_like(t, value)

    @staticmethod
    def minimum(x: torch.Tensor, bound: float) -> torch.Tensor:
        return torch.clamp(x, max=bound)

    @staticmethod
    def maximum(x: torch.Tensor, bound: float) -> torch.Tensor:
        return torch.clamp(x, min=bound)

    @staticmethod
    def count_reached(t: torch.Tensor, boundaries: Sequence[float]) -> torch.Tensor:
        count = torch.zeros_like(t)
        for boundary in boundaries:
            count = count + (t >= boundary).to(t.dtype)
        return count

    @staticmethod
    def piecewise(t: torch.Tensor, boundaries: Sequence[float], branch: Callable, after: bool = False):
        value = branch(0, t)
        for index, boundary in enumerate(boundaries, start=1):
            keep = t <= boundary if after else t < boundary
            value = torch.where(keep, value, branch(index, t))
        return value


HOST = HostMath()
TENSOR = TensorMath()


def as_step(step):
    """Return (t, math) for a step given as a number or a tensor.

    An integer step tensor is evaluated in the default floating dtype (float32 unless
    changed); pass a float64 tensor to evaluate in double precision on the tensor path.
    """
    if type(step) is int:  # the per-step case of every host scheduler: skip the dispatch
        return float(step), HOST
    if isinstance(step, torch.Tensor):
        if not step.is_floating_point():
            step = step.to(torch.get_default_dtype())
        return step, TENSOR
    return float(step), HOST
