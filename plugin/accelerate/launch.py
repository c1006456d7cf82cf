"""Refuse N launched processes that would each train their own copy of the model.

``torchrun --nproc_per_node 2`` on a machine without GPUs, or ``accelerate launch
--multi_gpu`` there, starts processes whose ``Accelerator`` sees no distributed setup
unless told to use the CPU: each one trains alone, on all the data, and nobody says so.
"""
from __future__ import annotations

import os

from .errors import LaunchError
from .options import enforce

RECIPE = (
    "For several processes on CPUs, set ACCELERATE_USE_CPU=1 (or create Accelerator(cpu=True)) and launch "
    "with `ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 train.py` or "
    "`ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 train.py`"
)


def launched_processes() -> int:
    """How many processes the launcher says it started (1 when none is visible)."""
    for variable in ("WORLD_SIZE", "LOCAL_WORLD_SIZE"):
        value = _integer(variable)
        if value is not None:
            return value
    # A launcher that sets only LOCAL_RANK: rank 1 or higher means at least two processes.
    local_rank = _integer("LOCAL_RANK")
    return 2 if local_rank is not None and local_rank > 0 else 1


def _integer(variable: str):
    try:
        return int(os.environ[variable])
    except (KeyError, ValueError):
        return None


def check_launch(accelerator, strict: str) -> None:
    launched = launched_processes()
    if launched > 1 and accelerator.num_processes == 1:
        enforce(
            strict,
            LaunchError,
            f"{launched} processes were launched (WORLD_SIZE/LOCAL_RANK are set) but this Accelerator is not "
            f"distributed (distributed_type={accelerator.distributed_type.value}, num_processes=1): each "
            f"process would train its own copy of the model on all of the data. {RECIPE}. To train a single "
            f"process, start it with `python train.py`.",
        )
