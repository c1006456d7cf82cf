"""The Lightning integration: ``Trainer(strategy="wse")``, glue between Lightning and wse."""

from lightning.pytorch.strategies import StrategyRegistry

from .errors import LazyOptimizerStateError, SchedulerStepError, WSEStrategyWarning
from .options import DeviceOptions
from .preinitialize import preinitialize
from .strategy import WSEStrategy


def register_strategy() -> None:
    """Make ``lightning.Trainer(strategy="wse")`` resolve to ``WSEStrategy`` (idempotent)."""
    WSEStrategy.register_strategies(StrategyRegistry)


__all__ = [
    "WSEStrategy",
    "DeviceOptions",
    "LazyOptimizerStateError",
    "SchedulerStepError",
    "WSEStrategyWarning",
    "preinitialize",
    "register_strategy",
]
