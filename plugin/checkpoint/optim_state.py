"""Optimizer state between torch.optim's positional ``state_dict()`` and the hub's named form.

Reading names each positional entry and recognises the layout: torch.optim's classes,
the older ``transformers.optimization.AdamW`` (integer ``step``, ``correct_bias``, eps
added to sqrt(v)) and ``transformers.optimization.Adafactor`` (``exp_avg_sq_row``/``_col``,
``RMS``). Writing renumbers by the target's parameter order and groups, in torch.optim's
layout by default, or in transformers' (``layout="transformers"``).
"""
from __future__ import annotations

import copy
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch

from .hub import CheckpointError, OptimizerState

#: Group keys of torch.optim's classes (2.13) besides ``params``; used to recognise a
#: layout and to know which keys a torch writer may keep.
TORCH_GROUP_KEYS: Dict[str, frozenset] = {
    "AdamW": frozenset({"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "foreach", "capturable",
                        "differentiable", "fused", "decoupled_weight_decay"}),
    "SGD": frozenset({"lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize", "foreach",
                      "differentiable", "fused"}),
    "Adafactor": frozenset({"lr", "beta2_decay", "eps", "d", "weight_decay", "foreach", "maximize"}),
    "RMSprop": frozenset({"lr", "alpha", "eps", "weight_decay", "momentum", "centered", "capturable", "foreach",
                          "maximize", "differentiable"}),
    "NAdam": frozenset({"lr", "betas", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay",
                        "foreach", "maximize", "capturable", "differentiable"}),
    "RAdam": frozenset({"lr", "betas", "eps", "weight_decay", "decoupled_weight_decay", "foreach", "maximize",
                        "capturable", "differentiable"}),
    "Adagrad": frozenset({"lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "foreach",
                          "maximize", "differentiable", "fused"}),
    "Adadelta": frozenset({"lr", "rho", "eps", "weight_decay", "foreach", "capturable", "maximize",
                           "differentiable"}),
    "Adamax": frozenset({"lr", "betas", "eps", "weight_decay", "foreach", "maximize", "differentiable",
                         "capturable"}),
    "ASGD": frozenset({"lr", "lambd", "alpha", "t0", "weight_decay", "foreach", "maximize", "differentiable",
                       "capturable"}),
    "Rprop": frozenset({"lr", "etas", "step_sizes", "foreach", "maximize", "differentiable", "capturable"}),
}
TORCH_GROUP_KEYS["Adam"] = TORCH_GROUP_KEYS["AdamW"]

#: Algorithms whose per-parameter state keeps ``step`` as a 0-d float tensor in torch.
_STEP_TENSOR = {"AdamW", "Adam", "Adafactor", "RMSprop", "NAdam", "RAdam", "Adagrad", "Adadelta", "Adamax",
                "ASGD", "Rprop"}

#: The older transformers AdamW's and Adafactor's definitions, as hub conventions.
LEGACY_ADAMW = {"eps": "sqrt_v", "weight_decay": "after_update"}
TRANSFORMERS_ADAFACTOR = {"definition": "transformers"}

_LAYOUTS = ("torch", "transformers", "cerebras")


def recognise(param_groups: Sequence[Mapping[str, Any]], state: Mapping[Any, Mapping[str, Any]],
              where: str = "optimizer state") -> str:
    """The algorithm (torch.optim class name) a positional state dict belongs to."""
    keys = set(param_groups[0]) - {"params", "initial_lr", "param_names", "max_lr", "min_lr"} if param_groups else set()
    slots = set()
    for entry in state.values():
        slots.update(entry)
    if "beta1_power" in slots or {"correct_bias", "l2_regularization_rate"} <= keys:
        raise CheckpointError(
            f"{where}: Adam state in the cerebras-pytorch layout (beta powers); read it through the "
            "'cerebras' format, or from an optimizer that keeps torch's step"
        )
    if "correct_bias" in keys:
        return "AdamW"  # transformers' older AdamW (its only optimizer with correct_bias)
    if {"decay_rate", "clip_threshold"} <= keys or "exp_avg_sq_row" in slots:
        return "Adafactor"
    if "beta2_decay" in keys:
        return "Adafactor"
    if "momentum_decay" in keys:
        return "NAdam"
    if "nesterov" in keys or "dampening" in keys or "momentum_buffer" in slots:
        return "SGD"
    if "centered" in keys:
        return "RMSprop"
    if "lr_decay" in keys:
        return "Adagrad"
    if "rho" in keys:
        return "Adadelta"
    if "lambd" in keys:
        return "ASGD"
    if "etas" in keys:
        return "Rprop"
    if "exp_inf" in slots:
        return "Adamax"
    if "adam" in keys:
        return "Lamb"
    if "amsgrad" in keys:
        if "decoupled_weight_decay" in keys:
            return "AdamW" if all(g.get("decoupled_weight_decay") for g in param_groups) else "Adam"
        if all(float(g.get("weight_decay", 0.0)) == 0.0 for g in param_groups):
            return "AdamW"  # without weight decay Adam and AdamW are one algorithm
        raise CheckpointError(
            f"{where}: Adam or AdamW? The state does not say (torch before 2.6 did not record "
            "decoupled_weight_decay) and weight_decay is not 0; pass algorithm='Adam' or 'AdamW'"
        )
    if "betas" in keys and "eps" in keys:
        return "RAdam"
    if keys == {"lr", "betas", "weight_decay"}:
        return "Lion"
    raise CheckpointError(
        f"{where}: cannot tell which optimizer this state belongs to (group keys {sorted(keys)}, state keys "
        f"{sorted(slots)}); pass algorithm=<torch.optim class name>, or convert the model only (model_only=True)"
    )


def to_hub(state_dict: Mapping[str, Any], group_names: Sequence[Sequence[str]], *, where: str,
           algorithm: Optional[str] = None,
           shapes: Optional[Mapping[str, Sequence[int]]] = None) -> OptimizerState:
    """Name a torch ``Optimizer.state_dict()``: ``group_names[g]`` lists group g's parameter names
    in order. ``shapes`` (name -> shape) checks that each state tensor fits its parameter."""
    groups = state_dict.get("param_groups") if isinstance(state_dict, Mapping) else None
    positional = state_dict.get("state") if isinstance(state_dict, Mapping) else None
    if not isinstance(groups, list) or not isinstance(positional, Mapping):
        raise CheckpointError(f"{where}: not an optimizer state_dict (expected 'state' and 'param_groups')")
    if len(groups) != len(group_names):
        raise CheckpointError(f"{where}: {len(groups)} param groups, but the names were given for {len(group_names)}")
    from .formats import cerebras as cerebras_format

    if cerebras_format.is_cerebras_layout(groups, positional):  # saved by wse.optim / cerebras.pytorch.optim
        opt = cerebras_format.optimizer_to_hub(state_dict, [name for names in group_names for name in names],
                                               where=where, algorithm=algorithm)
        if shapes is not None:
            check_shapes(opt, shapes, where)
        return opt
    algorithm = algorithm or recognise(groups, positional, where)
    index_to_name: Dict[Any, str] = {}
    hub_groups = []
    for number, (group, names) in enumerate(zip(groups, group_names)):
        ids = list(group["params"])
        if len(ids) != len(names):
            raise CheckpointError(
                f"{where}: param group {number} holds {len(ids)} parameters, but {len(names)} names were found "
                f"for it; pass the parameter names in optimizer order (param_names=..., --param-names)"
            )
        index_to_name.update(zip(ids, names))
        hub_group = {key: copy.deepcopy(value) for key, value in group.items() if key not in ("params", "param_names")}
        hub_group["params"] = list(names)
        hub_groups.append(hub_group)
    named: Dict[str, Dict[str, Any]] = {}
    for index, entry in positional.items():
        key = index if index in index_to_name else _int_or_same(index)
        if key not in index_to_name:
            raise CheckpointError(f"{where}: state for parameter #{index}, which no param group lists")
        named[index_to_name[key]] = dict(entry)
    conventions: Dict[str, Any] = {}
    if algorithm == "AdamW" and any("correct_bias" in group for group in hub_groups):
        conventions.update(LEGACY_ADAMW)
    opt = OptimizerState(algorithm=algorithm, param_groups=hub_groups, state=named, conventions=conventions)
    if algorithm == "Adafactor" and ("decay_rate" in hub_groups[0] or "clip_threshold" in hub_groups[0]):
        opt.conventions.update(TRANSFORMERS_ADAFACTOR)
        for group in opt.param_groups:
            _adafactor_group(group, "torch_names")
        to_hub_adafactor_names(opt)
    _normalise_steps(opt)
    if shapes is not None:
        check_shapes(opt, shapes, where)
    return opt


def _int_or_same(key):
    try:
        return int(key)
    except (TypeError, ValueError):
        return key


def _normalise_steps(opt: OptimizerState) -> None:
    """The hub keeps ``step`` as torch does: a 0-d float32 tensor (transformers' older AdamW
    and Adafactor keep a Python int)."""
    if opt.algorithm not in _STEP_TENSOR:
        return
    for entry in opt.state.values():
        if "step" in entry and not isinstance(entry["step"], torch.Tensor):
            entry["step"] = torch.tensor(float(entry["step"]), dtype=torch.float32)


def check_shapes(opt: OptimizerState, shapes: Mapping[str, Sequence[int]], where: str) -> None:
    """Every full-size state tensor has its parameter's shape (or the state was misnamed)."""
    full = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg", "acc_delta", "sum",
            "exp_inf", "ax", "prev", "step_size", "grad_avg", "variance"}
    for name, entry in opt.state.items():
        if name not in shapes:
            raise CheckpointError(f"{where}: optimizer state for {name!r}, which the model does not have")
        expected = tuple(shapes[name])
        for key, value in entry.items():
            if key in full and isinstance(value, torch.Tensor) and value.dim() > 0 and tuple(value.shape) != expected:
                raise CheckpointError(
                    f"{where}: optimizer state {key!r} of {name!r} has shape {tuple(value.shape)}, the parameter "
                    f"{expected}: the parameter order does not match the optimizer's; pass param_names in the "
                    "order the optimizer was built with"
                )


# -- regrouping ----------------------------------------------------------------------------

def regroup(opt: OptimizerState, target: Sequence[Sequence[str]], where: str) -> OptimizerState:
    """The same state with the target's groups (``target[g]`` = names of group g in order).

    A target group takes its hyperparameters from the source group holding its first
    parameter; every other parameter in it must come from a source group with the same
    hyperparameters (else the resumed run would compute something else), and every parameter
    the source names must be placed. Scheduler lists are regrouped by ``group_mapping``.
    """
    owner = {name: number for number, group in enumerate(opt.param_groups) for name in group["params"]}
    wanted = [name for names in target for name in names]
    missing = [name for name in owner if name not in set(wanted)]
    unknown = [name for name in wanted if name not in owner]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"the optimizer holds {_few(missing)}, which the target does not")
        if unknown:
            parts.append(f"the target needs {_few(unknown)}, which the optimizer does not hold")
        raise CheckpointError(f"{where}: cannot regroup the optimizer: " + "; ".join(parts))
    groups = []
    for number, names in enumerate(target):
        if not names:
            raise CheckpointError(f"{where}: target param group {number} is empty")
        source = opt.param_groups[owner[names[0]]]
        hyper = _hyper(source)
        for name in names[1:]:
            other = opt.param_groups[owner[name]]
            if _hyper(other) != hyper:
                difference = sorted(k for k in set(hyper) | set(_hyper(other)) if hyper.get(k) != _hyper(other).get(k))
                raise CheckpointError(
                    f"{where}: the target puts {names[0]!r} and {name!r} in one param group, but the source "
                    f"optimizer gives them different {', '.join(difference)}; keep the source's groups "
                    "(param_groups='keep') or convert the model only"
                )
        group = copy.deepcopy({key: value for key, value in source.items() if key != "params"})
        group["params"] = list(names)
        groups.append(group)
    return OptimizerState(opt.algorithm, groups, opt.state, dict(opt.conventions))


def group_mapping(opt: OptimizerState, regrouped: OptimizerState) -> List[int]:
    """For each group of ``regrouped``, the source group its hyperparameters came from."""
    owner = {name: number for number, group in enumerate(opt.param_groups) for name in group["params"]}
    return [owner[group["params"][0]] for group in regrouped.param_groups]


def _hyper(group: Mapping[str, Any]) -> Dict[str, Any]:
    return {key: _plain(value) for key, value in group.items() if key not in ("params", "param_names")}


def _plain(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _few(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(name) for name in list(names)[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# -- writing -------------------------------------------------------------------------------

def from_hub(opt: OptimizerState, *, where: str, layout: str = "torch", approximate: bool = False) -> Dict[str, Any]:
    """A torch ``Optimizer.state_dict()`` numbering ``opt``'s parameters in its group order.

    ``layout="torch"`` writes torch.optim's layout and refuses a definition torch cannot
    express (the older transformers AdamW's eps placement, transformers' Adafactor) unless
    ``approximate``; ``layout="transformers"`` writes transformers' (older AdamW, Adafactor).
    """
    if layout not in _LAYOUTS:
        raise CheckpointError(f"unknown optimizer layout {layout!r}; choose one of {', '.join(_LAYOUTS)}")
    if layout == "cerebras":  # what wse.optim and cerebras.pytorch.optim optimizers load as their own
        from .formats.cerebras import optimizer_state_dict

        return optimizer_state_dict(opt, where=where, approximate=approximate)
    if layout == "transformers" and opt.algorithm not in ("AdamW", "Adafactor"):
        raise CheckpointError(f"{where}: transformers has no {opt.algorithm} optimizer; write it with layout='torch'")
    groups = []
    state: Dict[int, Dict[str, Any]] = {}
    index = 0
    for group in opt.param_groups:
        positions = []
        for name in group["params"]:
            if name in opt.state:
                state[index] = _entry(opt, opt.state[name], layout)
            positions.append(index)
            index += 1
        written = _group(opt, group, layout, where, approximate)
        written["params"] = positions
        groups.append(written)
    if layout == "torch":
        _refuse_definition(opt, where, approximate)
    elif not approximate:
        _refuse_torch_definition(opt, where)
    return {"state": state, "param_groups": groups}


def _refuse_torch_definition(opt: OptimizerState, where: str) -> None:
    """Writing transformers' layout for a state that torch's definition produced."""
    legacy = opt.algorithm == "AdamW" and opt.differs_from_torch()
    hf_adafactor = opt.algorithm == "Adafactor" and opt.conventions.get("definition") == "transformers"
    if not (legacy or hf_adafactor):
        raise CheckpointError(
            f"{where}: the source's {opt.algorithm} is torch.optim's; transformers' {opt.algorithm} computes "
            "other updates from the same state. Write torch's layout, or pass approximate=True (--approximate)"
        )


def _refuse_definition(opt: OptimizerState, where: str, approximate: bool) -> None:
    if approximate:
        return
    if opt.algorithm in ("Adam", "AdamW") and opt.differs_from_torch() == {"eps": "sqrt_v"}:
        raise CheckpointError(
            f"{where}: the source {opt.algorithm} is Cerebras' (eps added to sqrt(v) before the bias correction): "
            f"torch's {opt.algorithm} would continue slightly differently. Write it with optimizer_layout='cerebras' "
            f"(--optimizer-layout cerebras) for a target that runs wse.optim's or cerebras.pytorch's "
            f"{opt.algorithm}, pass approximate=True (--approximate) to accept torch's definition, or convert the "
            "model only"
        )
    differs = opt.differs_from_torch()
    if opt.algorithm in ("AdamW", "Adam") and differs:
        what = {("eps", "sqrt_v"): "eps added to sqrt(v), not to the bias-corrected sqrt(v_hat)",
                ("weight_decay", "after_update"): "weight decay applied after the update"}
        details = "; ".join(what.get(item, f"{item[0]} {item[1]}") for item in differs.items())
        legacy = differs.get("weight_decay") == "after_update"
        raise CheckpointError(
            f"{where}: the source's {opt.algorithm} is not torch's ({details}): torch's {opt.algorithm} would "
            "continue differently. "
            + ("Write it with optimizer_layout='transformers' (--optimizer-layout transformers) for a target that "
               "runs transformers' older AdamW, " if legacy else
               "Write it for a target that runs its definition (optimizer_layout='cerebras', "
               "--optimizer-layout cerebras, for wse.optim's and cerebras.pytorch's optimizers), ")
            + "pass approximate=True (--approximate) to accept torch's definition, or convert the model only"
        )
    if opt.algorithm == "Adafactor" and opt.conventions.get("definition") == "transformers":
        raise CheckpointError(
            f"{where}: the source Adafactor is transformers' (relative steps, update clipping), which "
            "torch.optim.Adafactor does not compute; write it with optimizer_layout='transformers', pass "
            "approximate=True to carry the second moments over anyway, or convert the model only"
        )


def _entry(opt: OptimizerState, entry: Mapping[str, Any], layout: str) -> Dict[str, Any]:
    entry = dict(entry)
    if opt.algorithm == "Adafactor":
        return _adafactor_entry(entry, layout)
    if layout == "transformers" and "step" in entry:  # older AdamW keeps an int step
        entry["step"] = int(round(float(entry["step"])))
    return entry


_ADAFACTOR_TO_HF = {"row_var": "exp_avg_sq_row", "col_var": "exp_avg_sq_col", "variance": "exp_avg_sq"}


def _adafactor_entry(entry: Dict[str, Any], layout: str) -> Dict[str, Any]:
    """torch keeps the factored moments with their reduced dim kept (``row_var`` [..., R, 1],
    ``col_var`` [..., 1, C]); transformers squeezes it (``exp_avg_sq_row`` [..., R])."""
    if layout == "transformers":
        out: Dict[str, Any] = {}
        for key, value in entry.items():
            if key == "row_var":
                out["exp_avg_sq_row"] = value.squeeze(-1)
            elif key == "col_var":
                out["exp_avg_sq_col"] = value.squeeze(-2)
            else:
                out[_ADAFACTOR_TO_HF.get(key, key)] = value
        return out
    # transformers' extras (RMS, exp_avg) have no place in torch's Adafactor
    return _torch_adafactor_names(entry, keep_extras=False)


def _torch_adafactor_names(entry: Mapping[str, Any], keep_extras: bool) -> Dict[str, Any]:
    """transformers' Adafactor state under torch's names, with the reduced dims put back."""
    out: Dict[str, Any] = {}
    for key, value in entry.items():
        if key == "exp_avg_sq_row":
            out["row_var"] = value.unsqueeze(-1)
        elif key == "exp_avg_sq_col":
            out["col_var"] = value.unsqueeze(-2)
        elif key == "exp_avg_sq":
            out["variance"] = value
        elif keep_extras or key not in ("RMS", "exp_avg"):
            out[key] = value
    return out


def to_hub_adafactor_names(opt: OptimizerState) -> None:
    """Rename a transformers-layout Adafactor state to torch's names in place (hub form)."""
    for name, entry in list(opt.state.items()):
        # RMS and exp_avg stay in the hub: a transformers writer puts them back
        opt.state[name] = _torch_adafactor_names(entry, keep_extras=True)


def _group(opt: OptimizerState, group: Mapping[str, Any], layout: str, where: str, approximate: bool) -> Dict[str, Any]:
    out = {key: copy.deepcopy(value) for key, value in group.items() if key != "params"}
    for key in ("lr", "weight_decay"):  # a tensor-valued (scheduled) hyperparameter becomes a number
        if isinstance(out.get(key), torch.Tensor):
            out[key] = float(out[key])
    if opt.algorithm in ("AdamW", "Adam"):
        if layout == "transformers":
            keep = {"lr", "betas", "eps", "weight_decay", "correct_bias", "initial_lr"}
            out.setdefault("correct_bias", True)
            return {key: value for key, value in out.items() if key in keep}
        correct_bias = out.pop("correct_bias", True)
        if not correct_bias and not approximate:
            raise CheckpointError(f"{where}: the source AdamW runs without bias correction (correct_bias=False), "
                                  "which torch's AdamW cannot; convert the model only, or pass approximate=True")
        l2 = out.pop("l2_regularization_rate", 0.0)
        if float(l2) != 0.0 and not approximate:
            raise CheckpointError(f"{where}: l2_regularization_rate={float(l2)} has no torch AdamW counterpart; "
                                  "convert the model only, or pass approximate=True")
        defaults = {"amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                    "differentiable": False, "fused": None, "decoupled_weight_decay": opt.algorithm == "AdamW"}
        for key, value in defaults.items():
            out.setdefault(key, value)
        return out
    if opt.algorithm == "Adafactor":
        return _adafactor_group(out, layout)
    return out


def _adafactor_group(group: Dict[str, Any], layout: str) -> Dict[str, Any]:
    if layout == "transformers":
        if "beta2_decay" in group:
            group["decay_rate"] = group.pop("beta2_decay")
        if "d" in group:
            group["clip_threshold"] = group.pop("d")
        for key in ("foreach", "maximize"):
            group.pop(key, None)
        return group
    if "decay_rate" in group:
        group["beta2_decay"] = group.pop("decay_rate")
    if "clip_threshold" in group:
        group["d"] = group.pop("clip_threshold")
    if layout == "torch_names":  # the hub: torch's names, transformers' extra keys kept
        return group
    eps = group.get("eps")
    if isinstance(eps, (list, tuple)) and len(eps) == 2:
        group["eps"] = tuple(eps)
    for key in ("beta1", "scale_parameter", "relative_step", "warmup_init"):
        group.pop(key, None)
    group.setdefault("foreach", None)
    group.setdefault("maximize", False)
    return group


def steps_taken(opt: OptimizerState) -> Optional[int]:
    """The optimizer's own step count (the largest ``step`` in its state), if it keeps one."""
    steps = [entry["step"] for entry in opt.state.values() if "step" in entry]
    if not steps:
        return None
    return int(max(float(step) for step in steps))


def beta_powers_to_step(power: float, beta: float) -> int:
    """N from beta**(N+1), as cerebras-pytorch's Adam keeps it after N steps."""
    return int(round(math.log(power) / math.log(beta))) - 1
