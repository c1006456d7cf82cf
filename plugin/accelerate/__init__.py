"""The Accelerate integration: ``wse.accelerate.prepare(accelerator, ...)``, glue between Accelerate and wse.

    accelerator = Accelerator(gradient_accumulation_steps=4)
    model, optimizer, loader, scheduler = wse.accelerate.prepare(
        accelerator, model, optimizer, loader, scheduler, check="strict"
    )
    for batch in loader:
        with accelerator.accumulate(model):
            loss = loss_fn(model(batch))
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()        # kept: wse already stepped it, once per update
            optimizer.zero_grad()
    accelerator.end_training()      # prints the one closing line

Glue only: optimizer state is allocated by ``wse.optim.preinitialize``, the rules
(strictness, error types, in-graph schedules) are ``wse.rules``' as for
``WSEStrategy``, steps run on ``wse.device.Device``, hyperparameters are read by
``wse.monitoring``.
"""
from .errors import LaunchError, LazyOptimizerStateError, PrepareError, SchedulerStepError, WSEAccelerateWarning
from .entry_point import prepare, state
from .run import AccelerateRun
from .scheduling import PerUpdateScheduler

__all__ = [
    "prepare",
    "state",
    "AccelerateRun",
    "PerUpdateScheduler",
    "LazyOptimizerStateError",
    "SchedulerStepError",
    "PrepareError",
    "LaunchError",
    "WSEAccelerateWarning",
]
