"""Per-iteration scheduling: every scheduler steps exactly once per optimizer step, inside it.

On a static-graph device the schedule is part of the compiled step, so it advances with
the optimizer, not with epochs, and its update is captured with the optimizer's. Four
parts:

* ``make_per_iteration`` rewrites the scheduler configs that ``configure_optimizers``
  produced to ``interval="step", frequency=1`` (warning only where the user asked for
  something else) and refuses ``ReduceLROnPlateau``, which cannot step without a
  metric.
* ``SchedulerSteps`` steps the schedulers of an optimizer right after that optimizer's
  step, through ``LightningModule.lr_scheduler_step`` (so an override is honoured), and
  checks that nothing else stepped them in between and that the hook stepped each once:
  a schedule can never drift from the optimizer's count. In manual optimization it
  reports a ``scheduler.step()`` of the user's at its line.
* ``switch_back_to_host_values`` undoes, at the end of the fit, what
  ``wse.rules.schedule_in_graph`` did at its start (switch the schedulers that can to
  tensor values, computed inside the step as on the device); ``host_side_message``
  says what to use for a scheduler that cannot be switched.
* ``take_over_scheduler_steps`` keeps Lightning's training loop from stepping those
  schedulers again. In automatic optimization Lightning steps them after
  ``optimizer_step`` has returned, outside the training step the device captures; the
  strategy steps them inside it instead (``ReduceLROnPlateau`` configs, which can only
  be left to Lightning under ``strict="warn"``/``"off"``, keep Lightning's own stepping).
"""
from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Callable, Dict, List, Optional, Sequence

import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_debug, rank_zero_warn
from lightning.pytorch.utilities.types import LRSchedulerConfig
from torch.optim.lr_scheduler import ReduceLROnPlateau

from .errors import SchedulerStepError, WSEStrategyWarning
from .options import enforce


def _is_plateau(config: LRSchedulerConfig) -> bool:
    return config.reduce_on_plateau or isinstance(config.scheduler, ReduceLROnPlateau)


def _describe(config: LRSchedulerConfig) -> str:
    name = type(config.scheduler).__name__
    return f"{config.name} ({name})" if config.name and config.name != name else name


def explicit_settings(configured) -> Dict[int, dict]:
    """What ``configure_optimizers`` said itself about each scheduler's ``interval``/``frequency``.

    Lightning fills in ``interval="epoch"`` for a scheduler returned bare (``[opt], [lr]``)
    or in a dict without the key; only a value the user wrote is a request the strategy
    overrides. Returns ``{id(scheduler): {"interval": ..., "frequency": ...}}`` with the
    keys that were given.
    """
    found: Dict[int, dict] = {}

    def walk(item) -> None:
        if isinstance(item, dict):
            if "scheduler" in item:
                given = {key: item[key] for key in ("interval", "frequency") if key in item}
                found[id(item["scheduler"])] = given
            for value in item.values():
                walk(value)
        elif isinstance(item, (list, tuple)):
            for value in item:
                walk(value)

    walk(configured)
    return found


def make_per_iteration(
    configs: List[LRSchedulerConfig],
    strict: str,
    explicit: Optional[Dict[int, dict]] = None,
    automatic_optimization: bool = True,
) -> List[LRSchedulerConfig]:
    """Set every config to step once per optimizer step; return those the strategy schedules.

    ``ReduceLROnPlateau`` is refused (``strict="raise"``) or left to Lightning as configured.
    A warning is given only where the user asked for something else in automatic
    optimization (``explicit`` names what ``configure_optimizers`` wrote): Lightning's
    default ``interval="epoch"`` is no request, and manual optimization ignores
    ``interval`` anyway. Every change is logged at DEBUG level.
    """
    explicit = explicit or {}
    scheduled, asked = [], []
    for config in configs:
        if _is_plateau(config):
            enforce(
                strict,
                SchedulerStepError,
                f"{_describe(config)} steps on a monitored metric, which exists only after validation, not "
                f"at every optimizer step; strategy 'wse' steps every scheduler once per optimizer step, "
                f"inside the step. Replace it with a closed-form schedule from wse.optim.lr_scheduler (e.g. "
                f"CosineDecayLR, or SequentialLR of LinearLR warm-up and CosineDecayLR), or pass "
                f"WSEStrategy(strict='warn') to leave it to Lightning as configured (stepped after validation).",
            )
            continue
        if config.interval != "step" or config.frequency != 1:
            before = f"{_describe(config)} (interval={config.interval!r}, frequency={config.frequency})"
            rank_zero_debug(f"Strategy 'wse': stepping {before} once per optimizer step instead.")
            given = explicit.get(id(config.scheduler), {})
            if automatic_optimization and (given.get("interval", "step") != "step" or given.get("frequency", 1) != 1):
                asked.append(before)
            config.interval, config.frequency = "step", 1
        scheduled.append(config)
    if asked:
        rank_zero_warn(
            f"Strategy 'wse' steps every scheduler once per optimizer step, so {', '.join(asked)} will step "
            f"every optimizer step instead. Express the schedule in optimizer steps (e.g. total_iters = "
            f"epochs * steps per epoch) and drop `interval`/`frequency` from configure_optimizers.",
            category=WSEStrategyWarning,
        )
    return scheduled


def describe_optimizer(optimizer, optimizers: Sequence) -> str:
    """``"AdamW"``, or ``"optimizer 1 (AdamW)"`` when there are several optimizers."""
    inner = getattr(optimizer, "optimizer", optimizer)
    name = type(inner).__name__
    if len(optimizers) > 1:
        for index, candidate in enumerate(optimizers):
            if candidate is inner or getattr(candidate, "optimizer", None) is inner:
                return f"optimizer {index} ({name})"
    return name


class SchedulerSteps:
    """Steps each optimizer's schedulers right after its step, and checks their count.

    Args:
        configs: the configs ``make_per_iteration`` returned.
        step_scheduler: how to step one scheduler (``LightningModule.lr_scheduler_step``,
            called with no metric).
        strict: what to do when a scheduler was stepped other than once per optimizer step.
        optimizers: all the optimizers of the fit (to name one unambiguously in messages).
    """

    def __init__(
        self,
        configs: List[LRSchedulerConfig],
        step_scheduler: Callable[[object, Optional[float]], None],
        strict: str,
        optimizers: Sequence = (),
    ):
        self._step_scheduler = step_scheduler
        self._strict = strict
        self._optimizers = list(optimizers)
        self._by_optimizer: Dict[int, list] = {}
        for config in configs:
            self._by_optimizer.setdefault(id(config.scheduler.optimizer), []).append(config.scheduler)
        # The step count of each scheduler right after its last step, where it has one.
        self._counts: Dict[int, int] = {}
        self._reported: set = set()
        # True while this object steps schedulers (a guarded scheduler lets those calls through).
        self._stepping = False

    @property
    def schedulers(self) -> list:
        return [scheduler for schedulers in self._by_optimizer.values() for scheduler in schedulers]

    def schedulers_of(self, optimizer) -> list:
        return self._by_optimizer.get(id(optimizer), [])

    def keep_only(self, schedulers) -> None:
        """Stop stepping every scheduler not in ``schedulers`` (a callback replaced it)."""
        kept = {id(scheduler) for scheduler in schedulers}
        for key, owned in list(self._by_optimizer.items()):
            owned[:] = [scheduler for scheduler in owned if id(scheduler) in kept]
            if not owned:
                del self._by_optimizer[key]

    @contextlib.contextmanager
    def counts_kept(self):
        """Steps inside the block are checked as usual; on exit the counts go back to their entry values.

        For extra updates whose schedulers are put back by the caller (``WSEStrategy.extra_steps``):
        the next step of the run is then checked against the count the run left.
        """
        kept = dict(self._counts)
        try:
            yield
        finally:
            self._counts = kept

    def name_optimizer(self, optimizer) -> str:
        return describe_optimizer(optimizer, self._optimizers)

    def step(self, optimizer) -> None:
        """Step ``optimizer``'s schedulers once each (call right after ``optimizer`` stepped)."""
        schedulers = self._by_optimizer.get(id(optimizer))
        if not schedulers:
            return
        self.before_step(optimizer)
        self._stepping = True
        try:
            for scheduler in schedulers:
                self._step_scheduler(scheduler, None)
        finally:
            self._stepping = False
        self.after_step(optimizer)

    def before_step(self, optimizer) -> None:
        """Check that nothing stepped ``optimizer``'s schedulers since their last step."""
        for scheduler in self._by_optimizer.get(id(optimizer), ()):
            count, previous = getattr(scheduler, "last_epoch", None), self._counts.get(id(scheduler))
            if isinstance(count, int) and previous is not None and count != previous:
                self._report(
                    scheduler,
                    optimizer,
                    f"was stepped {count - previous} extra time(s) between two optimizer steps, by code other "
                    f"than the strategy",
                    "remove your own `scheduler.step()` calls (from `optimizer_step` overrides and callbacks too): "
                    "the strategy steps every scheduler itself.",
                )
            if isinstance(count, int):
                self._counts[id(scheduler)] = count

    def after_step(self, optimizer) -> None:
        """Check that each of ``optimizer``'s schedulers advanced by one, and remember its count."""
        for scheduler in self._by_optimizer.get(id(optimizer), ()):
            count, previous = getattr(scheduler, "last_epoch", None), self._counts.get(id(scheduler))
            if isinstance(count, int) and previous is not None and count - previous != 1:
                self._report(
                    scheduler,
                    optimizer,
                    f"advanced {count - previous} time(s) instead of once when `LightningModule.lr_scheduler_step` "
                    f"was called for it",
                    "let `lr_scheduler_step` call `scheduler.step()` exactly once (or do not override it).",
                )
            if isinstance(count, int):
                self._counts[id(scheduler)] = count

    def _report(self, scheduler, optimizer, what: str, fix: str) -> None:
        if id(scheduler) in self._reported:
            return
        self._reported.add(id(scheduler))
        enforce(
            self._strict,
            SchedulerStepError,
            f"{type(scheduler).__name__} of {self.name_optimizer(optimizer)} {what}; strategy 'wse' steps every "
            f"scheduler exactly once per optimizer step, right after it, inside the training step: {fix}",
        )

    # -- manual optimization: the user's own scheduler.step() ----------------------------

    @contextlib.contextmanager
    def guarded(self):
        """Within the block, a ``scheduler.step()`` not made by the strategy is reported at its line.

        Lightning's manual-optimization recipe steps schedulers by hand; the strategy
        already steps each one after every ``step()`` of its optimizer, so such a call
        is reported (``strict``) and skipped, which keeps the schedule exact. The guard
        is an instance attribute for the duration of ``training_step`` only, so it never
        reaches a scheduler's ``state_dict``.
        """
        schedulers = self.schedulers
        for scheduler in schedulers:
            vars(scheduler)["step"] = functools.partial(self._users_step, scheduler)
        try:
            yield
        finally:
            for scheduler in schedulers:
                vars(scheduler).pop("step", None)

    def _users_step(self, scheduler, *args, **kwargs):
        if self._stepping:
            return type(scheduler).step(scheduler, *args, **kwargs)
        from ..device.location import user_location

        location = user_location()
        where = f" at {location}" if location is not None else ""
        optimizer = self.name_optimizer(scheduler.optimizer)
        message = (
            f"{type(scheduler).__name__}.step() was called{where}, but strategy 'wse' steps every scheduler "
            f"itself, in manual optimization too: right after each `step()` of its optimizer ({optimizer}), "
            f"inside the training step. Remove the `scheduler.step()` call (and any `self.lr_schedulers()` "
            f"stepping) from your LightningModule."
        )
        key = ("manual", id(scheduler))
        if key not in self._reported:
            self._reported.add(key)
            enforce(self._strict, SchedulerStepError, message if self._strict == "raise" else message + " The call was skipped.")
        return None


def take_over_scheduler_steps(trainer, is_ours: Callable[[object], bool]) -> Callable[[], None]:
    """Keep Lightning's loop from stepping the strategy's schedulers; return the undo.

    Lightning's training epoch loop steps schedulers through its ``update_lr_schedulers``
    after each batch (``update_plateau_schedulers=False``: the others) and after
    validation (``True``: ``ReduceLROnPlateau``). Those for which ``is_ours(scheduler)``
    is true are the strategy's now; the others (``ReduceLROnPlateau``, and schedulers a
    callback swapped in during the fit, let through by ``strict="warn"``/``"off"``) are
    left to Lightning, as configured. If a future Lightning steps them some other way,
    ``SchedulerSteps`` sees a scheduler stepped twice and says so.
    """
    loop = trainer.fit_loop.epoch_loop
    lightning_update = getattr(loop, "update_lr_schedulers", None)
    if not callable(lightning_update):
        raise RuntimeError(
            f"Strategy 'wse' steps the schedulers inside the training step and needs to stop Lightning's "
            f"own stepping, but this Lightning's training loop ({type(loop).__name__}) has no "
            f"`update_lr_schedulers`. Use a Lightning version with it (2.x)."
        )
    strategy = trainer.strategy

    def update_lr_schedulers(interval: str, update_plateau_schedulers: bool) -> None:
        if update_plateau_schedulers:
            lightning_update(interval, update_plateau_schedulers=True)
            return
        configs = strategy.lr_scheduler_configs
        others = [config for config in configs if not is_ours(config.scheduler)]
        if not others:
            return
        strategy.lr_scheduler_configs = others
        try:
            lightning_update(interval, update_plateau_schedulers=False)
        finally:
            strategy.lr_scheduler_configs = configs

    loop.update_lr_schedulers = update_lr_schedulers

    def undo() -> None:
        loop.__dict__.pop("update_lr_schedulers", None)

    return undo


def switch_back_to_host_values(schedulers: list) -> None:
    """Give the param groups Python floats again, as the user wrote them (end of fit)."""
    for scheduler in schedulers:
        disable = getattr(scheduler, "disable_tensor_values", None)
        if callable(disable) and getattr(scheduler, "uses_tensor_values", False):
            disable()


def host_side_message(scheduler, optimizer_name: str) -> str:
    """What is wrong with a scheduler that writes Python numbers, and what to use instead."""
    cls = type(scheduler)
    name = cls.__name__
    if isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler) and cls.__module__.startswith("torch.optim"):
        origin = f"torch.optim.lr_scheduler.{name}"
    else:
        origin = f"{name} ({cls.__module__})"
    return (
        f"{origin} (scheduler of {optimizer_name}) writes its value into the param groups as a Python number "
        f"at every step. On a static-graph device a compiled step reads a Python number as a constant: the "
        f"schedule would stop at its first value, or the step be compiled again for every new value. "
        f"{_instead(scheduler)} Or pass WSEStrategy(check='off') to train without the static-graph checks."
    )


def _instead(scheduler) -> str:
    from ..optim import lr_scheduler as wse_lr_scheduler

    name = type(scheduler).__name__
    counterpart = getattr(wse_lr_scheduler, name, None)
    if isinstance(counterpart, type) and issubclass(counterpart, wse_lr_scheduler.LRScheduler):
        arguments = ", ".join(
            parameter
            for parameter in inspect.signature(counterpart.__init__).parameters
            if parameter not in ("self", "last_epoch", "param_group_tags")
        )
        return (
            f"Use its namesake wse.optim.lr_scheduler.{name}({arguments}) instead, which writes a tensor "
            f"updated in place; it takes Cerebras' arguments (the initial value is given, not read from the "
            f"optimizer), so check its docstring for the schedule they define."
        )
    return (
        "Use a scheduler of wse.optim.lr_scheduler or wse.optim.weight_decay_scheduler (e.g. CosineDecayLR, "
        "LinearLR, SequentialLR), which write tensors updated in place, or give this scheduler an "
        "`enable_tensor_values(device, dtype)` method that does."
    )
