"""WSD checkpoint decay without a framework: decay periods, checkpoint plans and files, run snapshots.

The Lightning callback ``wse.callbacks.WSDCheckpointCallback`` is a thin adapter over
these pieces:

* ``find_decay_periods`` / ``DecayPeriodSource``: the one-method protocol
  (``decay_periods()``) that every WSD scheduler of wse implements;
* ``CheckpointPlan``: what happens after each optimizer update (save before a decay,
  save after it, fork a decay branch, hold the stable learning rate);
* ``RunSnapshot``: capture a run's model, optimizers, schedulers and RNGs and put them
  back bit for bit, which is what lets a branch decay without touching the run;
* ``branch_batches``: the data a branch trains on;
* ``files``: post-decay checkpoint contents, metadata, atomic writes, safe reads.
"""
from .branch_data import branch_batches
from .periods import SUPPORTED_SCHEDULERS, DecayPeriod, DecayPeriodSource, check_periods, find_decay_periods
from .plan import POST_DECAY, PRE_DECAY, CheckpointPlan, Event, post_decay_name, pre_decay_name
from .snapshot import RunSnapshot, capture_rng_states, restore_rng_states

__all__ = [
    "DecayPeriod",
    "DecayPeriodSource",
    "SUPPORTED_SCHEDULERS",
    "find_decay_periods",
    "check_periods",
    "CheckpointPlan",
    "Event",
    "PRE_DECAY",
    "POST_DECAY",
    "pre_decay_name",
    "post_decay_name",
    "RunSnapshot",
    "capture_rng_states",
    "restore_rng_states",
    "branch_batches",
]
