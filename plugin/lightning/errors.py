"""The errors and the warning category of the Lightning strategy's rules."""


class LazyOptimizerStateError(TypeError):
    """An optimizer would create its state during its first steps instead of before them."""


class SchedulerStepError(RuntimeError):
    """A scheduler cannot be, or was not, stepped exactly once per optimizer step."""


class WSEStrategyWarning(UserWarning):
    """A rule of the strategy was broken under ``strict="warn"``, or a setting was changed."""
