"""Running a verified step fast: compiled by ``torch.compile``, or replayed from a CUDA graph.

Both run the same step function the device verified. The compiled step counts the graphs
its backend is handed, so a recompilation -- something in the step that changes from
call to call -- shows up in the report instead of silently costing a compile per step.
The CUDA-graph step captures one call after a few warm-up calls on a side stream and
then replays it: inputs are copied into the captured buffers, outputs are copied out.
"""
from __future__ import annotations

import time
from typing import Callable, List, Optional, Sequence, Union

import torch
from torch.utils import _pytree as pytree


class CountingBackend:
    """A ``torch.compile`` backend that counts the graphs it compiles, then delegates."""

    def __init__(self, backend: Union[str, Callable]):
        self.backend = backend
        self.graphs = 0

    def __call__(self, graph_module, example_inputs):
        self.graphs += 1
        backend = self.backend
        if isinstance(backend, str):
            from torch._dynamo import lookup_backend

            backend = lookup_backend(backend)
        return backend(graph_module, example_inputs)


class CompiledStep:
    """The step function through ``torch.compile`` with static shapes, compiled on first call."""

    def __init__(self, fn: Callable, backend: Union[str, Callable]):
        self.counter = CountingBackend(backend)
        self.compiled = torch.compile(fn, backend=self.counter, dynamic=None)
        self.compile_seconds: Optional[float] = None
        self.recompilations = 0

    @property
    def graphs(self) -> int:
        return self.counter.graphs

    def __call__(self, *args, **kwargs):
        if self.compile_seconds is None:
            started = time.perf_counter()
            out = self.compiled(*args, **kwargs)
            self.compile_seconds = time.perf_counter() - started
            return out
        before = self.counter.graphs
        out = self.compiled(*args, **kwargs)
        if self.counter.graphs != before:
            self.recompilations += 1
        return out


def _tensor_leaves(values) -> List[torch.Tensor]:
    return [leaf for leaf in values if isinstance(leaf, torch.Tensor)]


class CudaGraphStep:
    """The step captured once in a CUDA graph and replayed.

    Python code in the step runs only while capturing; what it changes on the host is
    not replayed. The device therefore advances the step counters of the schedulers it
    knows (``last_epoch``, ``_step_count``) after each replay by as much as the captured
    call advanced them, so their state dicts stay right.
    """

    def __init__(self, fn: Callable, warmup: int, schedulers: Sequence = ()):
        self.fn = fn
        self.warmup = warmup
        # Schedulers with a Python step counter (torch's and wse's ``last_epoch``).
        self.schedulers = [s for s in schedulers if isinstance(getattr(s, "last_epoch", None), int)]
        self.graph: Optional["torch.cuda.CUDAGraph"] = None
        self.capture_seconds: Optional[float] = None
        self._warmed = 0
        self._spec = None
        self._static: list = []
        self._outputs = None
        self._counter_steps: list = []

    def __call__(self, *args, **kwargs):
        flat, spec = pytree.tree_flatten((args, kwargs))
        if self.graph is None:
            if self._warmed < self.warmup:
                self._warmed += 1
                return self._on_side_stream(args, kwargs)
            return self._capture_and_replay(flat, spec)
        self._copy_inputs(flat, spec)
        self.graph.replay()
        self._advance_counters()
        return pytree.tree_map_only(torch.Tensor, torch.Tensor.clone, self._outputs)

    def _on_side_stream(self, args, kwargs):
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            out = self.fn(*args, **kwargs)
        torch.cuda.current_stream().wait_stream(stream)
        return out

    def _capture_and_replay(self, flat, spec):
        on_host = [leaf for leaf in _tensor_leaves(flat) if leaf.device.type != "cuda"]
        if on_host:
            raise ValueError(
                f"replay='cuda_graph' needs every tensor input of the step on the GPU; "
                f"{len(on_host)} are on {on_host[0].device}. Move the batch to the device before "
                f"calling the step (a copy from host memory cannot be captured)."
            )
        self._spec = spec
        self._static = [leaf.clone() if isinstance(leaf, torch.Tensor) else leaf for leaf in flat]
        static_args, static_kwargs = pytree.tree_unflatten(self._static, spec)
        before = [(s.last_epoch, getattr(s, "_step_count", 0)) for s in self.schedulers]
        graph = torch.cuda.CUDAGraph()
        started = time.perf_counter()
        try:
            with torch.cuda.graph(graph):
                outputs = self.fn(*static_args, **static_kwargs)
        except Exception as error:
            raise RuntimeError(
                f"the verified step could not be captured in a CUDA graph: {error}\n"
                f"Everything in the step must run on the GPU without host synchronisation, and "
                f"torch.optim optimizers need capturable=True (wse.optim optimizers are)."
            ) from error
        self.capture_seconds = time.perf_counter() - started
        self._counter_steps = [
            (s.last_epoch - epoch, getattr(s, "_step_count", 0) - count) for s, (epoch, count) in zip(self.schedulers, before)
        ]
        self.graph = graph
        self._outputs = outputs
        graph.replay()
        return pytree.tree_map_only(torch.Tensor, torch.Tensor.clone, outputs)

    def _copy_inputs(self, flat, spec) -> None:
        if spec != self._spec or len(flat) != len(self._static):
            raise ValueError(
                f"replay='cuda_graph': the inputs of this step have a different structure than the "
                f"captured ones ({spec} vs {self._spec}); a CUDA graph replays fixed inputs."
            )
        for index, (static, value) in enumerate(zip(self._static, flat)):
            if isinstance(static, torch.Tensor):
                if not isinstance(value, torch.Tensor) or value.shape != static.shape or value.dtype != static.dtype:
                    raise ValueError(
                        f"replay='cuda_graph': input {index} is {_describe(value)}, the captured step had "
                        f"{_describe(static)}; a CUDA graph replays fixed shapes (use drop_last=True or pad)."
                    )
                static.copy_(value, non_blocking=True)
            elif value != static:
                raise ValueError(
                    f"replay='cuda_graph': the non-tensor input {index} is {value!r}, but {static!r} was "
                    f"captured; a CUDA graph bakes Python values in. Pass it as a tensor."
                )

    def _advance_counters(self) -> None:
        for scheduler, (epochs, counts) in zip(self.schedulers, self._counter_steps):
            if epochs:
                scheduler.last_epoch += epochs
            if counts and hasattr(scheduler, "_step_count"):
                scheduler._step_count += counts


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return repr(value)
