"""The simulated static-graph device: capture the first step, verify later ones, replay.

    from wse.device import Device

    device = Device(model, optimizer, scheduler, check="strict")
    for batch in loader:
        with device.step(batch):
            loss = loss_fn(model(batch))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            scheduler.step()
        print(loss.item())          # read after the step, not inside it
    print(device.summary())         # one line; device.report().format() has the detail

or, to run the verified step compiled (``compile=True``) or replayed from a CUDA graph
(``replay="cuda_graph"``), give the step as a function: ``step = device.wrap(train_step)``.
Lightning and Accelerate integrations drive the same object through ``begin_step`` /
``end_step`` / ``abort_step``.
"""
from .device import CHECK_MODES, REPLAYS, Device, StepFunction
from .errors import (
    GraphChangeError,
    HostHyperparameterError,
    HostSyncError,
    LazyOptimizerStateError,
    ShapeChangeError,
    StaticGraphViolation,
    StaticGraphWarning,
)
from .graph import Graph
from .libraries import LibraryCall
from .location import Location
from .report import DeviceReport

__all__ = [
    "Device",
    "StepFunction",
    "DeviceReport",
    "Graph",
    "Location",
    "LibraryCall",
    "StaticGraphViolation",
    "StaticGraphWarning",
    "LazyOptimizerStateError",
    "HostSyncError",
    "ShapeChangeError",
    "GraphChangeError",
    "HostHyperparameterError",
    "CHECK_MODES",
    "REPLAYS",
]
