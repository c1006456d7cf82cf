"""Cerebras-compatible optimizers and schedulers (mirrors ``cerebras.pytorch.optim``)."""
from . import lr_scheduler, scheduler, weight_decay_scheduler
from . import functional
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .asgd import ASGD
from .configure_optimizer import available_optimizers, configure_optimizer, configure_optimizer_params
from .lamb import Lamb
from .lion import Lion
from .nadam import NAdam
from .optimizer import Optimizer
from .preinitialization import preinitialize
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD
from .configure_scheduler import (
    SchedulerConfigError,
    configure_lr_scheduler,
    configure_scheduler,
    configure_scheduler_params,
)

__all__ = [
    "Optimizer",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "ASGD",
    "Lamb",
    "Lion",
    "NAdam",
    "RAdam",
    "RMSprop",
    "Rprop",
    "SGD",
    "available_optimizers",
    "configure_optimizer",
    "configure_optimizer_params",
    "configure_scheduler",
    "configure_scheduler_params",
    "configure_lr_scheduler",
    "SchedulerConfigError",
    "preinitialize",
    "functional",
    "lr_scheduler",
    "scheduler",
    "weight_decay_scheduler",
]
