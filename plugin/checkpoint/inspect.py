"""What a checkpoint holds, without running pickled code: the report behind ``wse inspect``."""
from __future__ import annotations

import os
import pickletools
import zipfile
from collections import Counter
from typing import Any, Dict, List, Optional

from .hub import Checkpoint, CheckpointError, tensor_info

#: Globals torch's weights_only unpickler accepts by default (module prefixes).
_SAFE_GLOBALS = ("torch.", "collections.OrderedDict", "builtins.set", "builtins.frozenset", "builtins.slice",
                 "builtins.bytearray", "builtins.complex", "_codecs.encode")
_NUMPY = ("numpy.",)


def inspect(path: str, format: Optional[str] = None, unsafe: bool = False) -> Dict[str, Any]:
    """A JSON-able description of the checkpoint at ``path``."""
    from ._api import detect, load

    path = os.fspath(path)
    name = format or detect(path)
    report: Dict[str, Any] = {"path": path, "format": name}
    try:
        checkpoint = load(path, name, unsafe=unsafe)
    except CheckpointError as error:  # the model alone may still be readable
        from . import formats

        checkpoint = formats.get(name).read(path, unsafe=unsafe, model_only=True)
        checkpoint.note(f"optimizer state not read: {error}")
    report.update(describe(checkpoint))
    report["files"] = files(path)
    return report


def describe(checkpoint: Checkpoint) -> Dict[str, Any]:
    dtypes: Counter = Counter()
    sizes: Counter = Counter()
    total = 0
    for key in checkpoint.model:
        dtype, shape = tensor_info(checkpoint.model, key)
        count = 1
        for size in shape:
            count *= int(size)
        nbytes = count * _element_size(dtype)
        label = str(dtype).replace("torch.", "")
        dtypes[label] += 1
        sizes[label] += nbytes
        total += nbytes
    optimizers = []
    for opt in checkpoint.optimizers:
        keys = sorted({key for entry in opt.state.values() for key in entry})
        hyper = {k: _jsonable(v) for k, v in opt.param_groups[0].items() if k != "params"} if opt.param_groups else {}
        optimizers.append({"algorithm": opt.algorithm, "param_groups": [len(g["params"]) for g in opt.param_groups],
                           "parameters_with_state": len(opt.state), "state_keys": keys,
                           "hyperparameters": hyper, "conventions": dict(opt.conventions)})
    schedulers = [{"last_epoch": _jsonable(s.get("last_epoch")), "_step_count": _jsonable(s.get("_step_count")),
                   "last_lr": _jsonable(s.get("_last_lr", s.get("_last_value"))),
                   "keys": sorted(map(str, s))} for s in checkpoint.schedulers]
    for sched, state in zip(schedulers, checkpoint.schedulers):
        for key in _SCHEDULER_COUNTS[1:]:
            if key in state:
                sched[key] = _jsonable(state[key])
    metadata = checkpoint.metadata
    return {
        "versions": {k: v for k, v in (metadata.get("versions") or {}).items() if v},
        "step": checkpoint.step,
        "epoch": metadata.get("epoch"),
        "tensors": len(checkpoint.model),
        "bytes": total,
        "dtypes": {label: {"tensors": dtypes[label], "bytes": sizes[label]} for label in sorted(dtypes)},
        "prefix": metadata.get("prefix") or "",
        "optimizers": optimizers,
        "schedulers": schedulers,
        "rng": sorted(checkpoint.rng) if checkpoint.rng else [],
        "notes": list(metadata.get("notes") or []),
    }


def files(path: str) -> List[Dict[str, Any]]:
    """Each file with its size and kind; a pickle's kind says whether reading it is safe."""
    paths = [path] if os.path.isfile(path) else sorted(
        os.path.join(root, name) for root, _, names in os.walk(path) for name in names)
    out = []
    for file in paths:
        out.append({"name": os.path.relpath(file, path) if file != path else os.path.basename(file),
                    "bytes": os.path.getsize(file), "kind": kind(file)})
    return out


def kind(file: str) -> str:
    if file.endswith(".json"):
        return "json"
    if file.endswith(".safetensors"):
        return "safetensors"
    with open(file, "rb") as handle:
        head = handle.read(8)
    if head.startswith(b"\x89HDF"):
        return "hdf5"
    if zipfile.is_zipfile(file):
        names = _zip_globals(file)
        if names is None:
            return "zip"
        unsafe = sorted(n for n in names if not n.startswith(_SAFE_GLOBALS + _NUMPY))
        if unsafe:
            return "pickle (torch.save) needing unpickling: " + ", ".join(unsafe[:4]) + (" ..." if len(unsafe) > 4 else "")
        if any(n.startswith(_NUMPY) for n in names):
            return "pickle (torch.save) of tensors and numpy arrays: read safely"
        return "pickle (torch.save) of tensors: read safely (weights_only)"
    if head[:1] == b"\x80":
        return "pickle: needs unpickling (not read)"
    return "other"


def _zip_globals(file: str) -> Optional[set]:
    """The ``module.name`` globals a torch.save pickle references, read without executing it."""
    try:
        with zipfile.ZipFile(file) as archive:
            member = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
            if member is None:
                return None
            data = archive.read(member)
    except (OSError, zipfile.BadZipFile):
        return None
    names = set()
    strings: List[str] = []
    try:
        for opcode, argument, _ in pickletools.genops(data):
            if opcode.name in ("GLOBAL", "INST"):
                names.add(str(argument).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                names.add(f"{strings[-2]}.{strings[-1]}")
            if isinstance(argument, str):
                strings.append(argument)
    except Exception:  # a truncated pickle: report what was seen
        pass
    return names


def _element_size(dtype) -> int:
    import torch

    return torch.empty((), dtype=dtype).element_size()


def _jsonable(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return repr(value)


# Where each layout keeps its update count: torch and Cerebras schedulers, pytorch-accelerated's
# (``num_updates``), Megatron-Core's ``OptimizerParamScheduler`` (``num_steps``).
_SCHEDULER_COUNTS = ("last_epoch", "num_updates", "num_steps")


def _scheduler_line(sched: dict) -> str:
    """One scheduler of a report, by the count and last value its layout records."""
    parts = [f"{key} {sched[key]}" for key in _SCHEDULER_COUNTS if sched.get(key) is not None][:1]
    if sched.get("last_lr") is not None:
        parts.append(f"last lr {sched['last_lr']}")
    return ", ".join(parts) or f"state keys {', '.join(sched['keys'])}"


def format_report(report: Dict[str, Any]) -> str:
    """The human-readable form of ``inspect``'s report."""
    lines = [f"{report['path']}: {report['format']}"]
    versions = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    if versions:
        lines.append(f"  versions:   {versions}")
    lines.append(f"  step:       {report['step'] if report['step'] is not None else 'not recorded'}"
                 + (f" (epoch {report['epoch']})" if report.get("epoch") is not None else ""))
    dtypes = ", ".join(f"{d} {v['tensors']} ({_bytes(v['bytes'])})" for d, v in report["dtypes"].items())
    lines.append(f"  model:      {report['tensors']} tensors, {_bytes(report['bytes'])}" + (f": {dtypes}" if dtypes else ""))
    if report["prefix"]:
        lines.append(f"  prefix:     {report['prefix']!r} (stripped)")
    for number, opt in enumerate(report["optimizers"]):
        lines.append(f"  optimizer{'' if len(report['optimizers']) == 1 else ' ' + str(number)}:  {opt['algorithm']}, "
                     f"groups of {opt['param_groups']} params, state for {opt['parameters_with_state']}: "
                     f"{', '.join(opt['state_keys']) or 'empty'}")
        if opt["conventions"]:
            lines.append(f"              conventions: {opt['conventions']}")
    if not report["optimizers"]:
        lines.append("  optimizer:  none")
    for number, sched in enumerate(report["schedulers"]):
        lines.append(f"  scheduler {number}: {_scheduler_line(sched)}")
    if report["rng"]:
        lines.append(f"  rng:        {', '.join(report['rng'])}")
    lines.append("  files:")
    for file in report["files"]:
        lines.append(f"    {file['name']:<28} {_bytes(file['bytes']):>10}  {file['kind']}")
    for note in report["notes"]:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def _bytes(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"
