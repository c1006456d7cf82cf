"""Reading the learning rate, weight decay and momentum of every param group, cheaply, every step.

``ParamGroupMonitor`` is the framework-free core that the Lightning, Hugging Face and
Accelerate adapters share. It names each value as Lightning's ``LearningRateMonitor``
does (see ``wse.monitoring.naming``) and reads it without a host synchronisation at the
moment it is taken: values that are 0-d tensors (the in-graph LR and WD of
``strategy="wse"`` or of ``enable_tensor_values()``) are copied on their device, all at
once (one ``torch.stack`` per device and dtype), and turned into Python floats only when
asked (one ``tolist()`` per device). Python numbers, and tensors on the CPU (whose value
the host can read without waiting for a device), are read at once.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch

from .naming import (
    MOMENTUM_SUFFIX,
    WEIGHT_DECAY_SUFFIX,
    distinct_optimizers,
    group_series_names,
    optimizer_prefixes,
    unwrap_optimizer,
)
from .plan import MAX_PLAN_POINTS, Plan, plan_steps, planned_values

#: Devices whose tensors the host reads without waiting for anything: read when the snapshot is taken.
READ_AT_ONCE = frozenset({"cpu"})

# One value to read: (series name, optimizer index, group index, param-group key, element index or None).
_Entry = Tuple[str, int, int, str, Optional[int]]


def _copy_towards_host(stack: torch.Tensor):
    """Start bringing ``stack`` to the host without waiting: ``(tensor, event or None)``.

    On CUDA the copy goes, asynchronously, into pinned host memory, in stream order right
    after the values were taken; an event marks its end. Waiting for that event later
    waits for this copy only, not for the training step enqueued after it (a plain
    ``tolist()`` then would wait for the whole step).
    """
    if stack.device.type != "cuda":
        return stack, None
    host = torch.empty(stack.shape, dtype=stack.dtype, pin_memory=True)
    host.copy_(stack, non_blocking=True)
    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream(stack.device))
    return host, event


class Snapshot:
    """The values of a ``ParamGroupMonitor`` at the moment it was taken, not yet on the host.

    Taking it costs no host synchronisation (tensors on an accelerator are copied on their
    device and, on CUDA, sent on to pinned host memory asynchronously); ``values()`` waits
    for those copies only and caches the result.
    """

    __slots__ = ("_names", "_floats", "_where", "_stacks", "_values")

    def __init__(self, names, floats, where, stacks):
        self._names = names
        self._floats = floats
        self._where = where
        self._stacks = stacks
        self._values: Optional[Dict[str, float]] = None

    def values(self) -> Dict[str, float]:
        """The values as ``{series name: float}``, in the monitor's series order."""
        values = self._values
        if values is None:
            lists = []
            for stack, event in self._stacks:
                if event is not None:
                    event.synchronize()
                lists.append(stack.tolist())
            floats, where = self._floats, self._where
            values = {}
            for index, name in enumerate(self._names):
                bucket = where[index]
                values[name] = floats[index] if bucket is None else lists[bucket[0]][bucket[1]]
            self._values = values
            self._stacks = ()
        return values

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        state = "read" if self._values is not None else f"{len(self._stacks)} device read(s) pending"
        return f"Snapshot({len(self._names)} values, {state})"


class ParamGroupMonitor:
    """The LR, weight decay and momentum of every param group of some optimizers, by series name.

    Framework-free: works on any ``torch.optim.Optimizer`` (and on wrappers that hold one
    as ``.optimizer``: Lightning's, Accelerate's, DeepSpeed's), in any training loop::

        monitor = ParamGroupMonitor([optimizer], log_momentum=False, log_weight_decay=True)
        for step, batch in enumerate(loader):
            values = monitor.read()      # {"lr-AdamW/decay": 1e-3, "lr-AdamW/decay-weight_decay": 0.1, ...}
            train_step(batch)            # the optimizer uses exactly these values in this step
            accelerator.log(values, step=step)

    The values in the param groups before a step are those the optimizer uses in that step
    (a scheduler writes the next step's values right after the optimizer's step), so read
    before the step and log under that step's index. To stay clear of a static-graph
    step and of host synchronisation, take a ``snapshot()`` before the step (a copy on the
    device, no sync) and call its ``values()`` after it (one transfer per device).

    Series (see ``wse.monitoring.naming``): ``<prefix>[/<group>]`` for the learning rate,
    ``...-momentum`` (``betas[0]`` for Adam-like optimizers, else ``momentum``) when
    ``log_momentum``, ``...-weight_decay`` when ``log_weight_decay``. A group without the key
    (no ``weight_decay``, no ``momentum`` or ``betas``) simply has no such series.

    Args:
        optimizers: the optimizers to read (or one optimizer), in the order their series
            are named (the second ``AdamW`` is ``lr-AdamW-1``). An optimizer listed twice
            is read once.
        log_momentum: also read the momentum of each group.
        log_weight_decay: also read the weight decay of each group.
        names: optional, one per optimizer: a prefix used instead of ``lr-<Optimizer>``
            (Lightning's scheduler-config ``name``), ``None`` for the default.

    Raises:
        ValueError: two groups of one optimizer share a ``name``, or two optimizers would
            share a prefix.
    """

    def __init__(
        self,
        optimizers: Sequence,
        log_momentum: bool = False,
        log_weight_decay: bool = True,
        names: Optional[Sequence[Optional[str]]] = None,
    ):
        if isinstance(optimizers, torch.optim.Optimizer) or hasattr(optimizers, "param_groups"):
            optimizers = [optimizers]
        optimizers, names = distinct_optimizers(optimizers, names)
        for optimizer in optimizers:
            if not isinstance(getattr(optimizer, "param_groups", None), (list, tuple)):
                raise TypeError(
                    f"ParamGroupMonitor reads optimizers (objects with `param_groups`), got {type(optimizer).__name__}."
                )
        self.optimizers: List = optimizers
        self.log_momentum = bool(log_momentum)
        self.log_weight_decay = bool(log_weight_decay)
        self._prefixes = optimizer_prefixes(optimizers, names)
        self._layout: Optional[Tuple[int, ...]] = None
        self._entries: List[_Entry] = []
        self._group_names: List[List[str]] = []
        self.refresh()

    # -- names ------------------------------------------------------------------------

    def refresh(self) -> None:
        """Derive the series again from the param groups (done by itself when groups are added)."""
        self._layout = tuple(len(optimizer.param_groups) for optimizer in self.optimizers)
        self._group_names = [
            group_series_names(optimizer.param_groups, prefix) for optimizer, prefix in zip(self.optimizers, self._prefixes)
        ]
        entries: List[_Entry] = []
        for o, optimizer in enumerate(self.optimizers):
            for g, (group, name) in enumerate(zip(optimizer.param_groups, self._group_names[o])):
                entries.append((name, o, g, "lr", None))
                if self.log_momentum:
                    if "betas" in group:
                        entries.append((name + MOMENTUM_SUFFIX, o, g, "betas", 0))
                    elif "momentum" in group:
                        entries.append((name + MOMENTUM_SUFFIX, o, g, "momentum", None))
                if self.log_weight_decay and "weight_decay" in group:
                    entries.append((name + WEIGHT_DECAY_SUFFIX, o, g, "weight_decay", None))
        self._entries = entries

    def _current_entries(self) -> List[_Entry]:
        optimizers = self.optimizers
        layout = self._layout
        for index in range(len(optimizers)):
            if len(optimizers[index].param_groups) != layout[index]:
                self.refresh()
                break
        return self._entries

    @property
    def prefixes(self) -> List[str]:
        """The series prefix of each optimizer (``lr-AdamW``, ``lr-AdamW-1``, ...)."""
        return list(self._prefixes)

    def group_names(self, optimizer_index: int = 0) -> List[str]:
        """The LR series name of each param group of one optimizer."""
        self._current_entries()
        return list(self._group_names[optimizer_index])

    @property
    def names(self) -> List[str]:
        """Every series this monitor reads, in order."""
        return [entry[0] for entry in self._current_entries()]

    # -- values -----------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The current values: numbers and CPU tensors read now, other tensors copied on their device.

        No host synchronisation: a tensor on an accelerator is only copied there (one
        ``torch.stack`` per device and dtype); it reaches the host in ``Snapshot.values()``.
        """
        entries = self._current_entries()
        optimizers = self.optimizers
        names: List[str] = []
        floats: List[Optional[float]] = []
        where: List[Optional[Tuple[int, int]]] = []
        buckets: Dict[tuple, Tuple[int, List[torch.Tensor]]] = {}
        for name, o, g, key, element in entries:
            value = optimizers[o].param_groups[g].get(key)
            if value is None:
                continue
            if element is not None:
                value = value[element]
            if type(value) is float:
                floats.append(value)
                where.append(None)
            elif isinstance(value, torch.Tensor):
                if value.device.type in READ_AT_ONCE:
                    # Reading a CPU tensor waits for nothing: take its value now, before it changes.
                    floats.append(value.item())
                    where.append(None)
                else:
                    bucket = buckets.get((value.device, value.dtype))
                    if bucket is None:
                        bucket = buckets[(value.device, value.dtype)] = (len(buckets), [])
                    where.append((bucket[0], len(bucket[1])))
                    bucket[1].append(value.detach().reshape(()))
                    floats.append(None)
            else:
                floats.append(float(value))
                where.append(None)
            names.append(name)
        stacks = ()
        if buckets:
            with torch.no_grad():
                stacks = tuple(_copy_towards_host(torch.stack(tensors)) for _, tensors in buckets.values())
        return Snapshot(names, floats, where, stacks)

    def read(self) -> Dict[str, float]:
        """The current values as ``{series name: float}`` (one host transfer per device)."""
        return self.snapshot().values()

    # -- the plan ---------------------------------------------------------------------

    def plan(self, schedulers: Sequence, total_steps: int, max_points: int = MAX_PLAN_POINTS) -> Plan:
        """The values ``schedulers`` will write over a run of ``total_steps`` optimizer steps, by series name.

        Only the series this monitor reads, of the schedulers whose closed form is known
        (see ``wse.monitoring.plan``); the others are listed in ``Plan.unplanned``. Runs
        longer than ``max_points`` steps are sampled evenly, first and last step included.
        """
        steps = plan_steps(total_steps, max_points)
        series_of = {(o, g, key): name for name, o, g, key, _ in self._current_entries()}
        optimizer_index = {id(optimizer): o for o, optimizer in enumerate(self.optimizers)}
        planned: Dict[str, torch.Tensor] = {}
        unplanned = []
        for scheduler in schedulers:
            o = optimizer_index.get(id(unwrap_optimizer(getattr(scheduler, "optimizer", None))))
            if o is None:
                continue
            values = planned_values(scheduler, steps)
            if values is None:
                unplanned.append(type(scheduler).__name__)
                continue
            for (g, key), curve in values.items():
                name = series_of.get((o, g, key))
                if name is not None:
                    planned[name] = curve
        order = [entry[0] for entry in self._entries]
        series = {name: planned[name].tolist() for name in order if name in planned}
        return Plan(steps=steps, series=series, unplanned=unplanned)

    def __repr__(self) -> str:
        return (
            f"ParamGroupMonitor({', '.join(self._prefixes)}; {len(self._entries)} series, "
            f"log_momentum={self.log_momentum}, log_weight_decay={self.log_weight_decay})"
        )
