"""``compile=True``: once the device has verified the step, its tensor work runs compiled.

An Accelerate loop is not one function, so, as in the Lightning strategy, its two pieces
of tensor work are compiled, and everything else (the loop, Accelerate's bookkeeping, the
loss function, ``accelerator.backward``, ``zero_grad``) runs eagerly around them:

* the model's forward, through ``torch.compile`` (AOTAutograd compiles its backward
  with it, so ``accelerator.backward(loss)`` runs the compiled backward). The model's
  ``forward`` becomes a function that picks the compiled one in unchecked steps and the
  eager one in checked steps and outside steps (evaluation);
* the update: the optimizer's step followed by its schedulers' steps, compiled. The
  schedules' values are tensors updated in place, so a changing learning rate is an input
  of the graph, not a reason to compile again.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .run import AccelerateRun


class FastStep:
    """The compiled forward of each model and the compiled update of the (one) optimizer."""

    def __init__(self, run: "AccelerateRun"):
        self.run = run
        device = run.device
        self._models = []  # (module, the forward installed, the instance forward it replaced or None)
        for model in run.models:
            module = run.accelerator.unwrap_model(model)
            replaced = vars(module).get("forward")  # Accelerate's autocast wrapper, if it set one
            eager = module.forward
            installed = module.forward = self._forward_of(eager, device.compiled(eager))
            self._models.append((module, installed, replaced))
        (inner,) = run.inner_optimizers
        self._optimizer = inner
        self._optimizer_step = type(inner).step
        self._schedulers = run.schedulers_of(inner)
        self._update = device.compiled(self._eager_update)

    def _forward_of(self, eager: Callable, compiled: Callable) -> Callable:
        run = self.run

        def forward(*args, **kwargs):
            if run.runs_fast():
                return compiled(*args, **kwargs)
            return eager(*args, **kwargs)

        return forward

    def _eager_update(self) -> None:
        self._optimizer_step(self._optimizer)
        for scheduler in self._schedulers:
            scheduler.step()

    def update(self) -> None:
        """The optimizer's step and its schedulers' steps, compiled (gradients synchronised)."""
        self._update()

    def remove(self) -> None:
        """Give each model back the forward it had."""
        for module, installed, replaced in self._models:
            if vars(module).get("forward") is installed:
                if replaced is None:
                    del module.forward
                else:
                    module.forward = replaced
