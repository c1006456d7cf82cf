"""Which values of an optimizer's param groups to log, and under which names: the core of the LR/WD monitors.

Framework-free (no Lightning, Accelerate or transformers import): the Lightning
callback ``wse.callbacks.LearningRateMonitor``, the Hugging Face Trainer callback in
``wse.callbacks.hf`` and Accelerate loops all read values through ``ParamGroupMonitor``.

* ``ParamGroupMonitor(optimizers, log_momentum=False, log_weight_decay=True, names=None)``:
  ``.read() -> dict[str, float]``, or ``.snapshot()`` now and ``.values()`` later; ``.names``.
"""
from .naming import tags_label, unwrap_optimizer
from .reading import ParamGroupMonitor, Snapshot

__all__ = ["ParamGroupMonitor", "Snapshot", "tags_label", "unwrap_optimizer"]
