"""Cerebras-compatible optimizers and schedulers (mirrors ``cerebras.pytorch.optim``)."""
from . import lr_scheduler, scheduler, weight_decay_scheduler
