"""The Lightning integration: ``Trainer(strategy="wse")``, glue between Lightning and wse."""


def register_strategy() -> None:
    """Make ``lightning.Trainer(strategy="wse")`` resolve to ``WSEStrategy`` (idempotent)."""
    from lightning.pytorch.strategies import StrategyRegistry

    from .strategy import WSEStrategy

    WSEStrategy.register_strategies(StrategyRegistry)


# Defined before Lightning is imported: when this package is what first imports Lightning,
# `import wse` has hooked that import to call `register_strategy` as soon as it completes.
import lightning.pytorch  # noqa: E402,F401

from .errors import LazyOptimizerStateError, SchedulerStepError, WSEStrategyWarning  # noqa: E402
from .options import DeviceOptions  # noqa: E402
from .preinitialize import preinitialize  # noqa: E402
from .strategy import WSEStrategy  # noqa: E402

__all__ = [
    "WSEStrategy",
    "DeviceOptions",
    "LazyOptimizerStateError",
    "SchedulerStepError",
    "WSEStrategyWarning",
    "preinitialize",
    "register_strategy",
]
