"""``accelerator.save_state`` / ``load_state`` with the schedulers and a small wse sidecar.

Accelerate saves the schedulers it holds (``scheduler.bin``, ``scheduler_1.bin``...) but
keeps no global step. ``prepare`` hands it each ``PerUpdateScheduler`` once, through
``accelerator.prepare_scheduler``, which registers an already-prepared object without
wrapping it again; the files are Accelerate's own layout. A save-state hook adds
``wse_accelerate.json`` (JSON, never pickle): the number of optimizer updates and the
wse settings, read back by a load-state hook.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import TYPE_CHECKING

from .errors import PrepareError

if TYPE_CHECKING:
    from .run import AccelerateRun

SIDECAR = "wse_accelerate.json"
FORMAT = "wse.accelerate"
VERSION = 1


def _write_json_atomically(path: str, payload: dict) -> None:
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(prefix=".wse_accelerate.", suffix=".json.tmp", dir=directory)
    try:
        with os.fdopen(handle, "w") as file:
            json.dump(payload, file, indent=2, sort_keys=True)
            file.write("\n")
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def sidecar_payload(run: "AccelerateRun") -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "global_step": run.global_step,
        "device_steps": run.device.step_count,
        "num_processes": run.accelerator.num_processes,
        "schedulers": [type(scheduler).__name__ for scheduler in run.schedulers],
        "settings": {"strict": run.strict, **{k: v for k, v in run.device_settings.items() if k != "compile_backend"}},
    }


def read_sidecar(input_dir: str) -> dict:
    """The sidecar of a checkpoint directory, checked."""
    path = os.path.join(input_dir, SIDECAR)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"accelerator.load_state({input_dir!r}): the checkpoint has no {SIDECAR}, so its global step is "
            f"unknown. It was not saved by a run prepared with wse.accelerate.prepare; load it into a plain "
            f"Accelerate run, or save it again from a wse.accelerate run."
        )
    with open(path) as file:
        payload = json.load(file)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or not isinstance(payload.get("global_step"), int):
        raise ValueError(f"{path} is not a wse.accelerate sidecar (expected format {FORMAT!r} with an integer global_step).")
    if payload.get("version", 0) > VERSION:
        raise ValueError(f"{path} has version {payload['version']}; this wse reads up to version {VERSION}. Upgrade wse.")
    return payload


def _check_registered_once(run: "AccelerateRun") -> None:
    accelerator = run.accelerator
    custom = getattr(accelerator, "_custom_objects", [])
    for scheduler in run.schedulers:
        if any(obj is scheduler or getattr(obj, "scheduler", None) is scheduler for obj in custom):
            raise PrepareError(
                f"{type(scheduler).__name__} is registered twice for checkpointing: wse.accelerate.prepare "
                f"already hands it to accelerator.save_state (as scheduler*.bin). Remove the "
                f"accelerator.register_for_checkpointing(...) call for it."
            )


def install(run: "AccelerateRun", wrappers: list) -> None:
    """Register the schedulers with the accelerator and the sidecar's save and load hooks."""
    accelerator = run.accelerator
    _check_registered_once(run)
    for wrapper in wrappers:
        accelerator.prepare_scheduler(wrapper)

    def save(models, weights, output_dir: str) -> None:
        _check_registered_once(run)
        if accelerator.is_local_main_process if accelerator.project_configuration.save_on_each_node else accelerator.is_main_process:
            _write_json_atomically(os.path.join(output_dir, SIDECAR), sidecar_payload(run))

    def load(models, input_dir: str) -> None:
        payload = read_sidecar(input_dir)
        saved = payload.get("schedulers", [])
        mine = [type(scheduler).__name__ for scheduler in run.schedulers]
        if saved != mine:
            raise ValueError(
                f"accelerator.load_state({input_dir!r}): the checkpoint holds schedulers {saved}, this run "
                f"prepared {mine}. Prepare the same schedulers, in the same order, as the run that saved it."
            )
        run.global_step = payload["global_step"]
        run.forget_scheduler_counts()  # the loaded states set new counts

    run._handles.append(accelerator.register_save_state_pre_hook(save))
    run._handles.append(accelerator.register_load_state_pre_hook(load))
