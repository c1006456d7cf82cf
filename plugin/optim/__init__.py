"""Cerebras-compatible optimizers and schedulers (mirrors ``cerebras.pytorch.optim``)."""
from . import lr_scheduler, scheduler, weight_decay_scheduler
from .configure_scheduler import (
    SchedulerConfigError,
    configure_lr_scheduler,
    configure_scheduler,
    configure_scheduler_params,
)
