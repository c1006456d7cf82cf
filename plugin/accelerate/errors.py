"""The errors and the warning category of the Accelerate integration's rules."""


class LazyOptimizerStateError(TypeError):
    """An optimizer would create its state during its first steps instead of before them."""


class SchedulerStepError(RuntimeError):
    """A scheduler cannot be stepped exactly once per optimizer update."""


class PrepareError(TypeError):
    """``wse.accelerate.prepare`` was given an object it cannot place, or in the wrong order."""


class LaunchError(RuntimeError):
    """Several processes were launched but the ``Accelerator`` is not distributed."""


class WSEAccelerateWarning(UserWarning):
    """A rule was broken under ``strict="warn"``."""
