"""The ``cerebras`` format: training states in ``.mdl`` files as cerebras-pytorch 2.10 saves them.

A cerebras-pytorch training loop (and Model Zoo 1.x) saves
``cstorch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
"lr_scheduler": scheduler.state_dict(), "global_step": step}, path)``; the Model Zoo 2.x
Trainer saves ``model.``-prefixed names and a ``schedulers`` list. Both are read; the
first is written (the second when the checkpoint came from one, so that it goes back as
it came).

Optimizer state is translated between the Cerebras layout (``wse.optim`` keeps the same)
and torch.optim's, per algorithm:

* Adam/AdamW keep ``beta1_power``/``beta2_power`` instead of a step count: after ``N``
  steps they hold ``beta**(N+1)``, so torch's ``step`` is ``N`` and back. The group keys
  ``l2_regularization_rate`` (Adam's weight decay is stored there) and ``correct_bias``
  are carried; Cerebras adds ``eps`` to ``sqrt(v)`` before the bias correction, which the
  hub records as the convention ``eps="sqrt_v"``.
* Adamax keeps ``beta1_power`` the same way; Adadelta, RMSprop and Rprop keep no step
  (torch's counter, unused by their updates, is the global step).
* SGD, Adagrad, ASGD, NAdam, RAdam have torch's layout; Adafactor's is Hugging Face's
  (``exp_avg_sq_row``/``_col``, ``decay_rate``, ``clip_threshold``), renamed to torch's
  (``row_var``/``col_var``, ``beta2_decay``, ``d``) with Hugging Face's switches kept;
  Lamb and Lion, which torch lacks, keep the ``wse.optim`` layout.

The optimizer's positions are named from the model state dict (its parameters in
order; buffers and tied copies are skipped by shape), or from ``param_names=``.
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import torch

from .. import _h5, _io
from ..hub import Checkpoint, CheckpointError, LazyStateDict, OptimizerState, tensor_info
from ..names import names_from_module
from ..optim_state import TRANSFORMERS_ADAFACTOR

__all__ = ["sniff", "read", "write", "optimizer_to_hub", "optimizer_state_dict", "is_cerebras_layout"]

#: top-level keys of the two layouts cstorch users save
_LAYOUT_KEYS = ("model", "optimizer", "lr_scheduler", "schedulers", "global_step")
# state tensors that have the parameter's shape (used to name optimizer positions)
_PARAM_SHAPED = ("exp_avg", "exp_avg_sq", "momentum_buffer", "square_avg", "acc_delta", "sum", "ax",
                 "exp_inf", "prev", "step_size", "max_exp_avg_sq")
# buffers that live in a state dict beside the parameters, never optimized
_BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")
# torch.optim group flags with no Cerebras counterpart; their neutral values are dropped
_TORCH_ONLY_FLAGS = {"foreach": None, "capturable": False, "differentiable": False, "fused": None,
                     "maximize": False, "decoupled_weight_decay": None}


# -- sniff ----------------------------------------------------------------------------------


def sniff(path: str) -> bool:
    """Whether ``path`` is a ``.mdl`` file (an HDF5 file with cstorch's root attributes).

    Without h5py an HDF5 file is claimed, so that reading it says which extra to install.
    """
    if not os.path.isfile(path) or not _h5.has_hdf5_signature(path):
        return False
    try:
        h5py, _ = _h5.h5_modules()
    except CheckpointError:
        return True
    try:
        with _h5.open_file(h5py, path, "r") as handle:
            return "__spec__" in handle.attrs and "__version__" in handle.attrs
    except (OSError, ValueError):
        return False


# -- read -----------------------------------------------------------------------------------


def read(path: str, model_only: bool = False, param_names: Optional[Sequence[str]] = None,
         algorithm: Optional[str] = None, **_: Any) -> Checkpoint:
    """Read a ``.mdl`` file into the hub form; model tensors are read lazily, one at a time.

    Args:
        model_only: read only the model (no optimizer, scheduler or step).
        param_names: the parameter names in optimizer order, when they cannot be told from
            the model state dict (buffers or tied weights of the same shapes in between).
        algorithm: the optimizer class name ("AdamW", "SGD", ...) when its param-group keys
            are ambiguous (Adam and AdamW without weight decay are the same computation).
    """
    reader = _h5.MdlReader(path)
    if reader.spec.kind not in ("builtins.dict", "collections.OrderedDict"):
        raise CheckpointError(f"{path}: the saved object is a {reader.spec.kind or 'single value'}, not a dict "
                              f"of model/optimizer state")
    top = list(reader.spec.keys)
    metadata: Dict[str, Any] = {
        "format": "cerebras",
        "versions": {"cerebras-pytorch": reader.cstorch_version, "mdl": reader.version},
    }
    if "model" not in top:
        # a bare state dict: cstorch.save(model.state_dict(), path)
        if any(child.kind is not None for child in reader.spec.children):
            raise CheckpointError(
                f"{path}: neither a training state (no 'model' entry) nor a bare state dict (its entries "
                f"{', '.join(map(repr, top[:8]))} are not all tensors)"
            )
        model_keys = list(zip(map(str, top), reader.keys))
        metadata["cerebras_layout"] = "state_dict"
        return Checkpoint(model=_lazy_model(reader, model_keys), metadata=metadata)
    if "schedulers" in top and "lr_scheduler" in top:
        raise CheckpointError(f"{path}: has both 'schedulers' and 'lr_scheduler'; cerebras Model Zoo refuses "
                              f"such a checkpoint, and so does this reader")

    model_keys = []
    for sub_path, key in reader.subtree_keys("model"):
        if len(sub_path) != 1:
            raise CheckpointError(f"{path}: model entry {key!r} is nested; a model state dict maps names to tensors")
        model_keys.append((str(sub_path[0]), key))
    prefix = ""
    if ("schedulers" in top or "__metadata__" in top) and model_keys and all(
            name.startswith("model.") for name, _ in model_keys):
        prefix = "model."  # the Model Zoo 2.x Trainer wraps the net as `.model`
        model_keys = [(name[len(prefix):], key) for name, key in model_keys]
    metadata["cerebras_layout"] = "modelzoo" if "schedulers" in top else "cstorch"
    metadata["cerebras_model_prefix"] = prefix
    model = _lazy_model(reader, model_keys)
    checkpoint = Checkpoint(model=model, metadata=metadata)
    if model_only:
        return checkpoint

    model_leaf_keys = {key for _, key in model_keys}

    unread: List[str] = []

    def unreadable(key: str, error: CheckpointError) -> None:
        # an entry beside the training state (a data loader's state, say) that cannot be
        # read safely is left out; in the training state itself it is an error
        if any(key == top or key.startswith(f"{top}.") for top in _LAYOUT_KEYS):
            raise error
        unread.append(key)
        checkpoint.note(f"left out {key!r}: {error}")

    tree = reader.tree(defer=lambda key: key in model_leaf_keys, unreadable=unreadable)
    extra = {key: value for key, value in tree.items() if key not in _LAYOUT_KEYS
             and not any(bad == str(key) or bad.startswith(f"{key}.") for bad in unread)}
    if extra:
        metadata["cerebras_extra"] = extra

    checkpoint.step = _global_step(tree.get("global_step"), path)
    schedulers = tree.get("schedulers")
    if schedulers is None and tree.get("lr_scheduler") is not None:
        schedulers = [tree["lr_scheduler"]]
    checkpoint.schedulers = [_scheduler_to_hub(s) for s in (schedulers or []) if s is not None]

    saved = tree.get("optimizer")
    if saved is not None:
        states = saved if isinstance(saved, list) else [saved]
        for index, state in enumerate(states):
            where = f"{path}: optimizer" + (f" {index}" if len(states) > 1 else "")
            _check_optimizer_dict(state, where)
            # with several optimizers, param_names holds one list of names per optimizer
            names = param_names if len(states) == 1 or param_names is None else param_names[index]
            names_by_position = _position_names(state, model, names, where, checkpoint)
            checkpoint.optimizers.append(
                _optimizer_to_hub(state, names_by_position, algorithm, checkpoint.step, where))
    if checkpoint.step is None:
        checkpoint.step = _step_from_state(checkpoint)
    return checkpoint


def optimizer_to_hub(state_dict: Mapping[str, Any], names: Sequence[str], *, where: str,
                     algorithm: Optional[str] = None, global_step: Optional[int] = None) -> OptimizerState:
    """Name and translate an optimizer ``state_dict()`` in the Cerebras layout (``wse.optim`` or
    ``cerebras.pytorch.optim``), wherever it was saved; ``names`` are the parameters in optimizer order."""
    _check_optimizer_dict(state_dict, where)
    positions = [index for group in state_dict["param_groups"] for index in group["params"]]
    if len(positions) != len(names):
        raise CheckpointError(f"{where}: the optimizer holds {len(positions)} parameters, {len(names)} names were "
                              f"given; pass the parameter names in optimizer order (param_names=...)")
    return _optimizer_to_hub(dict(state_dict), list(names), algorithm, global_step, where)


def is_cerebras_layout(param_groups: Sequence[Mapping[str, Any]], state: Mapping[Any, Mapping[str, Any]]) -> bool:
    """Whether an optimizer state is in the Cerebras layout (its Adam keeps beta powers, not a step)."""
    keys = set().union(*(group.keys() for group in param_groups)) if param_groups else set()
    return {"l2_regularization_rate", "correct_bias"} <= keys or any("beta1_power" in entry for entry in state.values())


def optimizer_state_dict(opt: OptimizerState, model: Optional[Mapping[str, torch.Tensor]] = None, *, where: str,
                         approximate: bool = False) -> Dict[str, Any]:
    """The hub's optimizer state as a positional ``state_dict()`` in the Cerebras layout, the one
    ``wse.optim`` and ``cerebras.pytorch.optim`` optimizers load as their own. Without ``model``,
    parameters that had no state yet are left out (the optimizer allocated theirs already)."""
    return _optimizer_from_hub(opt, model, None, approximate, where)


def _lazy_model(reader: "_h5.MdlReader", model_keys: List[Tuple[str, str]]) -> LazyStateDict:
    loaders, info = {}, {}
    for name, key in model_keys:
        target = reader.link_target(key) or key
        if reader.kind(target) not in _h5.TENSOR_KINDS:
            raise CheckpointError(f"{reader.path}: model entry {key!r} is not a tensor ({reader.kind(target)})")
        loaders[name] = lambda target=target: reader.tensor(target)
        info[name] = reader.tensor_info(target)
    return LazyStateDict(loaders, info)


def _python(value: Any) -> Any:
    """A 0-d tensor as the Python number it holds (cstorch keeps scheduled hyperparameters as tensors)."""
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        return value.item()
    return value


def _global_step(value: Any, path: str) -> Optional[int]:
    if value is None:
        return None
    value = _python(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 0:
        raise CheckpointError(f"{path}: global_step is {value!r}; it should be a non-negative whole number")
    return int(value)


def _check_optimizer_dict(state: Any, where: str) -> None:
    if not isinstance(state, dict) or "state" not in state or "param_groups" not in state:
        keys = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{where}: expected an optimizer state_dict() with 'state' and 'param_groups', got {keys}")


def _param_shape(state: Mapping[str, Any]) -> Optional[Tuple[int, ...]]:
    for key in _PARAM_SHAPED:
        value = state.get(key)
        if isinstance(value, torch.Tensor):
            return tuple(value.shape)
    return None


def _position_names(saved: dict, model: Mapping[str, torch.Tensor], param_names: Optional[Sequence[str]],
                    where: str, checkpoint: Checkpoint) -> List[str]:
    """The parameter name of each optimizer position (group 0 first)."""
    positions = [index for group in saved["param_groups"] for index in group["params"]]
    shapes = [_param_shape(saved["state"].get(index, {})) for index in positions]
    if param_names is not None:
        if hasattr(param_names, "named_parameters"):
            names = names_from_module(param_names, list(model))
        elif param_names and isinstance(param_names[0], (list, tuple)):
            names = [name for group in param_names for name in group]
        else:
            names = [str(name) for name in param_names]
        names = _without_module_prefix(names, model)
        if len(names) != len(positions):
            raise CheckpointError(f"{where}: param_names has {len(names)} names, the optimizer has "
                                  f"{len(positions)} parameters")
        for name, shape in zip(names, shapes):
            if name not in model:
                raise CheckpointError(f"{where}: param_names names {name!r}, which the model does not have")
            if shape is not None and tuple(tensor_info(model, name)[1]) != shape:
                raise CheckpointError(f"{where}: parameter {name!r} has shape {list(tensor_info(model, name)[1])} "
                                      f"in the model but {list(shape)} in the optimizer state; param_names is "
                                      f"not in optimizer order")
        return names
    # Each group's parameters are taken in model order (groups are built by filtering
    # named_parameters()), skipping tensors whose shape does not fit: buffers, tied copies
    # and the parameters of other groups.
    candidates = [name for name in model if not name.endswith(_BUFFER_SUFFIXES)
                  and tensor_info(model, name)[0].is_floating_point]
    taken: set = set()
    names: List[str] = []
    shape_of = dict(zip(positions, shapes))
    for group in saved["param_groups"]:
        remaining = iter([name for name in candidates if name not in taken])
        for position in group["params"]:
            shape = shape_of[position]
            for name in remaining:
                if shape is None or tuple(tensor_info(model, name)[1]) == shape:
                    names.append(name)
                    taken.add(name)
                    break
            else:
                raise CheckpointError(
                    f"{where}: cannot tell which model tensor optimizer parameter {position} is (shape "
                    f"{list(shape) if shape else '?'}); pass param_names=[...] (--param-names FILE): the names of "
                    f"model.named_parameters() in the order the optimizer was given them"
                )
    if len(saved["param_groups"]) > 1 or names != candidates[:len(names)] or len(names) != len(candidates):
        checkpoint.note(
            "optimizer parameters named by matching shapes in model order, group by group; pass param_names "
            "to name them explicitly"
        )
    return names


def _without_module_prefix(names: List[str], model: Mapping[str, torch.Tensor]) -> List[str]:
    """``names`` as the model's keys spell them: names taken from a wrapping module (a
    LightningModule's ``net.fc.weight``) lose the prefix the saved state dict does not have."""
    if not names or all(name in model for name in names):
        return names
    for key in model:
        if names[0].endswith("." + key):
            prefix = names[0][: -len(key)]
            if all(name.startswith(prefix) and name[len(prefix):] in model for name in names):
                return [name[len(prefix):] for name in names]
    return names


def _algorithm(groups: List[dict], states: List[dict], requested: Optional[str], where: str) -> str:
    keys = set().union(*(group.keys() for group in groups))
    state_keys = set().union(*(state.keys() for state in states)) if states else set()
    if {"l2_regularization_rate", "correct_bias"} <= keys:
        coupled = any(_python(g.get("l2_regularization_rate", 0.0)) for g in groups)
        decoupled = any(_python(g.get("weight_decay", 0.0)) for g in groups)
        found = "Adam" if coupled and not decoupled else "AdamW"
        if requested in ("Adam", "AdamW"):
            found = requested
    elif {"decay_rate", "clip_threshold", "scale_parameter"} <= keys:
        found = "Adafactor"
    elif "momentum_decay" in keys:
        found = "NAdam"
    elif "lambd" in keys:
        found = "ASGD"
    elif "rho" in keys:
        found = "Adadelta"
    elif "lr_decay" in keys:
        found = "Adagrad"
    elif "etas" in keys:
        found = "Rprop"
    elif "centered" in keys:
        found = "RMSprop"
    elif "dampening" in keys:
        found = "SGD"
    elif "adam" in keys:
        found = "Lamb"
    elif "betas" in keys and "eps" not in keys:
        found = "Lion"
    elif "exp_inf" in state_keys or {"betas", "eps", "maximize"} <= keys:
        found = "Adamax"
    elif {"betas", "eps"} <= keys:
        found = "RAdam"
    else:
        raise CheckpointError(
            f"{where}: the optimizer (param-group keys {sorted(keys - {'params'})}) matches none of the "
            f"cerebras.pytorch optimizers whose state can be translated; convert with model_only=True "
            f"(--model-only) to keep only the weights"
        )
    if requested is not None and requested != found:
        raise CheckpointError(f"{where}: algorithm={requested!r} was given, but the state is that of {found}")
    return found


def _steps_from_power(power: torch.Tensor, beta: float) -> Optional[float]:
    """``N`` such that ``power == beta**(N+1)`` (not rounded), or None when ``power`` no longer tells it."""
    value = float(power)
    if not 0.0 < beta < 1.0 or not value > 1e-30 or value > 1.0:
        return None
    return math.log(value) / math.log(beta) - 1


def _taken_steps(state: dict, betas: Tuple[float, ...], global_step: Optional[int], where: str) -> int:
    """The steps a parameter's Adam state has taken, from its beta powers.

    The powers are float32 products, rounded at every step: after ``N`` steps their relative
    error is up to about ``N * 6e-8``, a few steps' worth for beta2 after 1e5 steps. So the
    global step is taken when the powers agree with it to that precision (a parameter that
    missed steps shows fewer), and the powers' own count otherwise. Once beta1's power has
    underflowed (after about 650 steps at 0.9), beta2's tells the count.
    """
    for key, beta in zip(("beta1_power", "beta2_power"), betas):
        if key in state:
            estimate = _steps_from_power(state[key], float(beta))
            if estimate is None:
                continue
            if global_step is not None and abs(estimate - global_step) <= 1 + 1e-4 * global_step:
                return global_step
            return max(int(round(estimate)), 0)
    if global_step is None:
        raise CheckpointError(f"{where}: the step count cannot be told (no usable beta powers and no global_step); "
                              f"it is needed for torch's `step`")
    return global_step


def _optimizer_to_hub(saved: dict, names: List[str], requested: Optional[str], global_step: Optional[int],
                      where: str) -> OptimizerState:
    groups = saved["param_groups"]
    positions = [index for group in groups for index in group["params"]]
    name_of = dict(zip(positions, names))
    states = [saved["state"][index] for index in positions if index in saved["state"]]
    algorithm = _algorithm(groups, states, requested, where)
    conventions: Dict[str, Any] = {}
    hub_groups = []
    for group in groups:
        out = {key: _python(value) for key, value in group.items() if key != "params"}
        if isinstance(out.get("betas"), list):
            out["betas"] = tuple(out["betas"])
        if algorithm in ("Adam", "AdamW"):
            conventions["eps"] = "sqrt_v"
            if algorithm == "Adam":
                # Adam's weight decay is L2, torch's Adam `weight_decay`
                out["weight_decay"] = out.pop("l2_regularization_rate", 0.0)
        elif algorithm == "Adafactor":
            out["beta2_decay"] = out.pop("decay_rate")
            out["d"] = out.pop("clip_threshold")
        out["params"] = [name_of[index] for index in group["params"]]
        hub_groups.append(out)
    hub_state: Dict[str, Dict[str, Any]] = {}
    for group, hub_group in zip(groups, hub_groups):
        for index in group["params"]:
            if index not in saved["state"]:
                continue
            state = dict(saved["state"][index])
            name = name_of[index]
            at = f"{where}, parameter {name!r}"
            if algorithm in ("Adam", "AdamW", "Adamax"):
                betas = tuple(_python(b) for b in hub_group["betas"])
                powers = ("beta1_power", "beta2_power")
                if any(key in state for key in powers) or global_step is not None:
                    steps = _taken_steps(state, betas if algorithm != "Adamax" else betas[:1], global_step, at)
                    state["step"] = torch.tensor(float(steps), dtype=torch.float32)
                for key in powers:
                    state.pop(key, None)
            elif algorithm in ("Adadelta", "RMSprop", "Rprop") and global_step is not None:
                state["step"] = torch.tensor(float(global_step), dtype=torch.float32)
            elif algorithm == "Adafactor":
                if "exp_avg_sq_row" in state:
                    state["row_var"] = state.pop("exp_avg_sq_row").unsqueeze(-1)
                if "exp_avg_sq_col" in state:
                    state["col_var"] = state.pop("exp_avg_sq_col").unsqueeze(-2)
                if "exp_avg_sq" in state:
                    state["variance"] = state.pop("exp_avg_sq")
            hub_state[name] = {"step": state.pop("step")} if "step" in state else {}
            hub_state[name].update(state)
    if algorithm == "Adafactor":
        conventions.update(TRANSFORMERS_ADAFACTOR)  # cerebras-pytorch adapts transformers' Adafactor
    return OptimizerState(algorithm=algorithm, param_groups=hub_groups, state=hub_state, conventions=conventions)


def _scheduler_to_hub(saved: Any) -> Dict[str, Any]:
    """A cstorch scheduler state as torch's: ``last_epoch`` an int, ``_last_lr`` the current values."""
    if not isinstance(saved, dict) or "last_epoch" not in saved:
        raise CheckpointError(f"a scheduler entry of the checkpoint is not a scheduler state_dict(): {saved!r:.200}")
    out = {}
    for key, value in saved.items():
        if key == "_schedulers" and isinstance(value, list):
            out[key] = [_scheduler_to_hub(sub) for sub in value]
        elif key == "_last_value" and isinstance(value, list):
            out[key] = [_python(v) for v in value]
        else:
            out[key] = _python(value)
    out["last_epoch"] = int(out["last_epoch"])
    if "_last_value" in out and "_last_lr" not in out and _scheduled_key(out) == "lr":
        out["_last_lr"] = list(out["_last_value"])
    return out


_WD_FIELDS = {"initial_val", "end_val", "base_val", "max_val", "vals", "val"}


def _scheduled_key(state: Mapping[str, Any]) -> str:
    """The param-group key a scheduler state drives: ``weight_decay`` for a cstorch WD scheduler, else ``lr``.

    The state names no class; cstorch's LR schedulers name their values ``*learning_rate*``,
    its WD schedulers ``*val*``.
    """
    if any("learning_rate" in key or key in ("base_lrs", "_last_lr") for key in state):
        return "lr"
    if _WD_FIELDS & set(state):
        return "weight_decay"
    for sub in state.get("_schedulers") or []:
        if isinstance(sub, Mapping):
            return _scheduled_key(sub)
    return "lr"


def _step_from_state(checkpoint: Checkpoint) -> Optional[int]:
    for scheduler in checkpoint.schedulers:
        return int(scheduler["last_epoch"])
    steps = [int(s["step"]) for o in checkpoint.optimizers for s in o.state.values()
             if isinstance(s.get("step"), torch.Tensor)]
    return max(steps) if steps else None


# -- write ----------------------------------------------------------------------------------


class _Streamed(Mapping):
    """The model mapping, handed to the writer so that each tensor is fetched when written."""

    def __init__(self, model: Mapping[str, torch.Tensor], prefix: str):
        self._model = model
        self._prefix = prefix

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._model[name[len(self._prefix):]]

    def __iter__(self) -> Iterator[str]:
        return (self._prefix + name for name in self._model)

    def __len__(self) -> int:
        return len(self._model)


def write(checkpoint: Checkpoint, path: str, model_only: bool = False, overwrite: bool = False,
          approximate: bool = False, progress: bool = True, prefix: Optional[str] = None, **_: Any) -> None:
    """Write ``checkpoint`` as cstorch.save writes a training state (``cstorch.load`` reads it).

    Args:
        model_only: write only the model.
        overwrite: replace an existing ``path`` (cstorch.save refuses to).
        approximate: accept an Adam state whose source adds ``eps`` to ``sqrt(v_hat)`` (torch) or
            decays weights after the update (legacy transformers AdamW); Cerebras' Adam does
            neither, so the resumed run differs slightly (by eps*(1-sqrt(1-beta2**t)) in the
            denominator; by lr**2*wd times the update).
        progress: show a progress bar (in bytes) while a large model is written.
        prefix: put before every model name ("model." for the Model Zoo 2.x Trainer); by
            default a Cerebras source's own prefix, else none.
    """
    _io.refuse_existing(path, overwrite)  # as cstorch.save refuses to
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CheckpointError(f"cannot write {path}: folder {folder} does not exist")
    metadata = checkpoint.metadata or {}
    if prefix is None:
        prefix = metadata.get("cerebras_model_prefix", "") if metadata.get("format") == "cerebras" else ""
    bare = not (checkpoint.optimizers or checkpoint.schedulers or checkpoint.step is not None)
    if metadata.get("cerebras_layout") == "state_dict" and bare:
        # it came as a bare state dict: cstorch.save(model.state_dict(), path)
        with _progress(checkpoint.model, prefix, path, progress) as update:
            _h5.write_tree(_Streamed(checkpoint.model, prefix), path, progress=update)
        return
    tree: Dict[str, Any] = {"model": _Streamed(checkpoint.model, prefix)}
    if not model_only:
        if checkpoint.optimizers:
            states = [_optimizer_from_hub(o, checkpoint.model, checkpoint.step, approximate, f"{path}: optimizer {i}")
                      for i, o in enumerate(checkpoint.optimizers)]
            tree["optimizer"] = states[0] if len(states) == 1 else states
        schedulers = [_scheduler_from_hub(s) for s in checkpoint.schedulers]
        if schedulers and "optimizer" in tree:
            first = tree["optimizer"] if isinstance(tree["optimizer"], dict) else tree["optimizer"][0]
            _tie_scheduled_values(first, schedulers)
        modelzoo = metadata.get("cerebras_layout") == "modelzoo" or len(schedulers) > 1
        if schedulers:
            if modelzoo:
                tree["schedulers"] = schedulers
            else:
                tree["lr_scheduler"] = schedulers[0]
        if checkpoint.step is not None:
            tree["global_step"] = int(checkpoint.step)
        for key, value in (metadata.get("cerebras_extra") or {}).items():
            tree.setdefault(key, value)
    with _progress(checkpoint.model, "model." + prefix, path, progress) as update:
        _h5.write_tree(tree, path, progress=update)


@contextlib.contextmanager
def _progress(model: Mapping[str, torch.Tensor], prefix: str, path: str, enabled: bool):
    """A tqdm bar over the model's bytes for a large model (tqdm hides itself off a terminal);
    yields the function the writer calls with each key it has written."""
    size = _io.total_bytes(model) if enabled else 0
    if size < _io.PROGRESS_BYTES:
        yield None
        return
    from tqdm.auto import tqdm

    sizes = {prefix + name: _io._element_size(dtype) * _io._numel(shape)
             for name, (dtype, shape) in ((name, tensor_info(model, name)) for name in model)}
    with tqdm(total=size, unit="B", unit_scale=True, desc=f"writing {os.path.basename(path)}", disable=None,
              leave=False) as bar:
        yield lambda key: bar.update(sizes.get(key, 0))


def _drop_torch_flags(group: dict, algorithm: str, where: str) -> None:
    for key, neutral in _TORCH_ONLY_FLAGS.items():
        if key not in group:
            continue
        value = group.pop(key)
        if key == "maximize" and algorithm in _KEEPS_MAXIMIZE:
            group[key] = value
        elif key == "maximize" and value:
            raise CheckpointError(f"{where}: maximize=True has no cerebras.pytorch {algorithm} counterpart")
        elif key == "decoupled_weight_decay" and value is not None and algorithm not in ("Adam", "AdamW"):
            if value:
                raise CheckpointError(f"{where}: decoupled_weight_decay=True has no cerebras.pytorch {algorithm} "
                                      f"counterpart")


_KEEPS_MAXIMIZE = ("SGD", "Adadelta", "Adagrad", "Adamax", "ASGD")

# the group keys each Cerebras optimizer saves, in its order (torch's extra flags are dropped)
_CEREBRAS_GROUP_KEYS = {
    "Adam": ("lr", "betas", "eps", "l2_regularization_rate", "correct_bias", "amsgrad", "weight_decay"),
    "AdamW": ("lr", "betas", "eps", "weight_decay", "l2_regularization_rate", "correct_bias", "amsgrad"),
}


def _optimizer_from_hub(hub: OptimizerState, model: Mapping[str, torch.Tensor], global_step: Optional[int],
                        approximate: bool, where: str) -> dict:
    algorithm = hub.algorithm
    known = ("Adam", "AdamW", "SGD", "Adafactor", "Adadelta", "Adagrad", "Adamax", "ASGD", "NAdam", "RAdam",
             "RMSprop", "Rprop", "Lamb", "Lion")
    if algorithm not in known:
        raise CheckpointError(f"{where}: {algorithm} has no cerebras.pytorch counterpart (known: {', '.join(known)}); "
                              f"convert with model_only=True (--model-only) to keep only the weights")
    differs = hub.differs_from_torch()
    if algorithm in ("Adam", "AdamW"):
        foreign = {key: hub.convention(key) for key in ("eps", "weight_decay")
                   if hub.convention(key) != {"eps": "sqrt_v", "weight_decay": "before_update"}[key]}
        if foreign and not approximate:
            raise CheckpointError(
                f"{where}: the source's {algorithm} differs from Cerebras' ({', '.join(f'{k}: {v}' for k, v in foreign.items())}"
                f"; Cerebras adds eps to sqrt(v) and decays weights before the update), so the resumed run would "
                f"differ slightly; pass approximate=True (--approximate) to accept that"
            )
    elif differs and not approximate:
        raise CheckpointError(f"{where}: the source's {algorithm} is defined differently ({differs}); pass "
                              f"approximate=True (--approximate) to write it anyway")
    if algorithm == "Adafactor" and hub.conventions != TRANSFORMERS_ADAFACTOR and not approximate:
        raise CheckpointError(
            f"{where}: torch.optim.Adafactor's update differs from the Hugging Face/Cerebras Adafactor; pass "
            f"approximate=True (--approximate) to continue with the Cerebras update from the translated state"
        )
    names = hub.param_names
    position = {name: index for index, name in enumerate(names)}
    groups = []
    for group in hub.param_groups:
        out = {key: value for key, value in group.items() if key not in ("params", "initial_lr")}
        _drop_torch_flags(out, algorithm, where)
        if algorithm in ("Adam", "AdamW"):
            if algorithm == "Adam":
                out["l2_regularization_rate"] = out.pop("weight_decay", 0.0) + out.get("l2_regularization_rate", 0.0)
                out["weight_decay"] = 0.0
            out.setdefault("l2_regularization_rate", 0.0)
            out.setdefault("correct_bias", True)
            out.setdefault("amsgrad", False)
            out = {key: out[key] for key in _CEREBRAS_GROUP_KEYS[algorithm] if key in out} | {
                key: value for key, value in out.items() if key not in _CEREBRAS_GROUP_KEYS[algorithm]}
        elif algorithm == "Adafactor":
            out["decay_rate"] = out.pop("beta2_decay", -0.8)
            out["clip_threshold"] = out.pop("d", 1.0)
            eps = tuple(out.get("eps", (1e-30, 1e-3)))
            out["eps"] = (1e-30 if eps[0] is None else eps[0], eps[1])
            for key, default in (("beta1", None), ("scale_parameter", True), ("relative_step", False),
                                 ("warmup_init", False)):
                out.setdefault(key, default)
        if "betas" in out:
            out["betas"] = tuple(out["betas"])
        if "tags" in group:
            out["tags"] = set(group["tags"]) if group["tags"] is not None else None
        out["params"] = [position[name] for name in group["params"]]
        groups.append(out)
    state: Dict[int, Dict[str, Any]] = {}
    for group in hub.param_groups:
        for name in group["params"]:
            saved = dict(hub.state.get(name, {}))
            try:
                state[position[name]] = _param_state_to_cerebras(algorithm, saved, group, name, model, global_step,
                                                                 f"{where}, parameter {name!r}")
            except _NoState:
                continue
    return {"state": state, "param_groups": groups}


def _zeros(model: Optional[Mapping[str, torch.Tensor]], name: str, where: str) -> torch.Tensor:
    if model is None:
        raise _NoState
    if name not in model:
        raise CheckpointError(f"{where}: has no state and is not in the model, so its zero state cannot be made")
    dtype, shape = tensor_info(model, name)
    return torch.zeros(shape, dtype=torch.float32 if dtype != torch.float64 else dtype)


class _NoState(Exception):
    """A parameter without state, where no model tells its shape: it is left out."""


def _param_state_to_cerebras(algorithm: str, state: dict, group: dict, name: str, model, global_step, where) -> dict:
    """One parameter's state in the Cerebras layout; what Cerebras allocates up front is made if missing."""
    steps = state.pop("step", None)
    steps = float(steps) if steps is not None else 0.0
    if algorithm in ("Adam", "AdamW"):
        out = {}
        for key in ("exp_avg", "exp_avg_sq"):
            out[key] = state[key] if key in state else _zeros(model, name, where)
        if group.get("amsgrad"):
            out["max_exp_avg_sq"] = state.get("max_exp_avg_sq", out["exp_avg_sq"].clone())
        if group.get("correct_bias", True):
            beta1, beta2 = (float(_python(b)) for b in group["betas"])
            # after N steps cerebras holds the powers of step N+1 (cstorch's own load sets N: one behind)
            out["beta1_power"] = _beta_power(beta1, int(steps) + 1)
            out["beta2_power"] = _beta_power(beta2, int(steps) + 1)
        return out
    if algorithm == "Adamax":
        out = {key: state[key] if key in state else _zeros(model, name, where) for key in ("exp_avg", "exp_inf")}
        beta1 = float(_python(group["betas"][0]))
        out["beta1_power"] = _beta_power(beta1, int(steps) + 1)
        return out
    if algorithm == "SGD":
        if group.get("momentum", 0):
            buffer = state.get("momentum_buffer")
            return {"momentum_buffer": buffer if buffer is not None else _zeros(model, name, where)}
        return {}
    if algorithm == "Adafactor":
        out = {}
        if "exp_avg" in state:
            out["exp_avg"] = state["exp_avg"]
        if "row_var" in state:
            out["exp_avg_sq_row"] = state["row_var"].squeeze(-1)
        if "col_var" in state:
            out["exp_avg_sq_col"] = state["col_var"].squeeze(-2)
        if "variance" in state:
            out["exp_avg_sq"] = state["variance"]
        out["step"] = torch.tensor(steps, dtype=torch.float32)
        return out
    if algorithm in ("Adadelta", "RMSprop", "Rprop", "Lamb", "Lion"):
        return state  # torch's step counter is not part of their Cerebras state
    state["step"] = torch.tensor(steps, dtype=torch.float32)
    return state


@functools.lru_cache(maxsize=32)
def _float32_power(beta: float, exponent: int) -> float:
    import numpy

    if exponent > 1 << 22:  # the sequential product has long reached its limit; close enough
        return float(numpy.float32(beta) ** numpy.float32(exponent))
    factors = numpy.full(exponent, beta, dtype=numpy.float32)
    return float(numpy.cumprod(factors, dtype=numpy.float32)[-1])


def _beta_power(beta: float, exponent: int) -> torch.Tensor:
    """``beta**exponent`` as a 0-d float32 tensor, rounded as Cerebras' optimizer reaches it.

    The optimizer starts at ``float32(beta)`` and multiplies by ``beta`` in float32 after
    every step; repeating that product gives the very bits a run from scratch holds.
    """
    return torch.tensor(_float32_power(float(beta), exponent), dtype=torch.float32)


def _scheduler_from_hub(state: Dict[str, Any]) -> Dict[str, Any]:
    """A scheduler state as cstorch keeps it: ``last_epoch`` an int64 tensor, the values in ``_last_value``."""
    out = {}
    for key, value in state.items():
        if key == "_schedulers" and isinstance(value, list):
            out[key] = [_scheduler_from_hub(sub) for sub in value]
        elif key != "_last_lr":
            out[key] = value
    if "_last_value" not in out and "_last_lr" in state:
        out["_last_value"] = list(state["_last_lr"])
    out["last_epoch"] = torch.tensor(int(out.get("last_epoch", 0)), dtype=torch.int64)
    return out


def _tie_scheduled_values(optimizer: dict, schedulers: List[Dict[str, Any]]) -> None:
    """Make each scheduled hyperparameter one 0-d float32 tensor, shared by the group and its scheduler.

    That is how a cstorch scheduler drives its optimizer (it writes into the tensor in
    place), so the saved file links ``_last_value[i]`` to the group's entry.
    """
    groups = optimizer["param_groups"]
    for scheduler in schedulers:
        key = _scheduled_key(scheduler)
        values = scheduler.get("_last_value")
        if not isinstance(values, list) or len(values) != len(groups):
            continue
        for index, (group, value) in enumerate(zip(groups, values)):
            if value is None or key not in group:
                continue
            current = group[key]
            if not isinstance(current, torch.Tensor):
                current = torch.tensor(float(current), dtype=torch.float32)
            group[key] = current
            values[index] = current
