"""The translation steps readers and writers share.

Naming positional optimizer state, fitting it to a target's param groups, regrouping
scheduler states, and the model-side transforms of a conversion (rename, cast).
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from . import names as N
from .hub import Checkpoint, CheckpointError, LazyStateDict, OptimizerState, tensor_info
from .optim_state import from_hub, group_mapping, regroup, to_hub

#: Scheduler ``state_dict()`` entries that hold one value per param group.
_PER_GROUP_KEYS = ("base_lrs", "_last_lr", "lr_lambdas", "min_lrs", "max_lrs", "_last_value", "base_momentums",
                   "max_momentums", "initial_lrs")


def shapes_of(model: Mapping[str, torch.Tensor]) -> Dict[str, Tuple[int, ...]]:
    return {name: tensor_info(model, name)[1] for name in model}


def name_optimizer(state_dict: Mapping[str, Any], model: Mapping[str, torch.Tensor], *, where: str,
                   param_names: Any = None, grouping: Optional[str] = None, algorithm: Optional[str] = None,
                   layernorm_params: Optional[set] = None) -> OptimizerState:
    """Turn a positional ``Optimizer.state_dict()`` into the hub's named form.

    The names, in optimizer order, come from ``param_names`` (a list of names, a list of
    per-group lists, or an ``nn.Module``) or else from the model state dict's own order
    (which torch.save keeps; safetensors sorts it, so a source whose model lives in
    safetensors needs ``param_names`` or a Hugging Face config). ``grouping="hf-trainer"``
    splits them into Trainer's decay / no-decay groups.
    """
    groups = state_dict.get("param_groups") if isinstance(state_dict, Mapping) else None
    if not isinstance(groups, list) or not groups:
        raise CheckpointError(f"{where}: not an optimizer state_dict (no 'param_groups')")
    sizes = [len(group.get("params", ())) for group in groups]
    shapes = shapes_of(model)
    if param_names is not None and isinstance(param_names, (list, tuple)) and param_names and \
            isinstance(param_names[0], (list, tuple)):
        group_names = [list(names) for names in param_names]
        return to_hub(state_dict, group_names, where=where, algorithm=algorithm, shapes=shapes)
    if param_names is None:
        flat = N.parameter_candidates(model)
        origin = "the model state dict's parameters"
    elif hasattr(param_names, "named_parameters"):
        flat = N.names_from_module(param_names, list(model))
        origin = "the module's named_parameters()"
    else:
        flat = [str(name) for name in param_names]
        origin = "param_names"
    if param_names is None and sum(sizes) != len(flat):
        flat = N.equal_duplicates(model, flat)
    if sum(sizes) != len(flat):
        raise CheckpointError(
            f"{where}: the optimizer holds {sum(sizes)} parameters but {origin} lists {len(flat)}; pass the "
            "parameter names in the order the optimizer was built with (param_names=[...], --param-names FILE)"
        )
    if len(sizes) == 1:
        return to_hub(state_dict, [flat], where=where, algorithm=algorithm, shapes=shapes)
    # Several groups: which names went where is not stored. Trainer's own split is authoritative
    # for a Trainer checkpoint; otherwise the one grouping (each group in model order) that the
    # state's shapes allow, and an error when they allow none or several: never a guess.
    if grouping == "hf-trainer":
        trainer_split = N.hf_trainer_groups(flat, layernorm_params, shapes if layernorm_params is None else None)
        if [len(names) for names in trainer_split] == sizes:
            return to_hub(state_dict, trainer_split, where=where, algorithm=algorithm, shapes=shapes)
    found = _interleavings(flat, sizes, _state_shapes(state_dict), shapes)
    if found is None:
        reason = "too many parameters to search the groupings"
    elif found[0] == 1:
        return to_hub(state_dict, found[1], where=where, algorithm=algorithm, shapes=shapes)
    elif found[0] == 0:
        reason = "no grouping of the parameters (each group in model order) fits the state's shapes"
    else:
        reason = "the state's shapes fit more than one grouping"
    raise CheckpointError(
        f"{where}: cannot tell which parameters the optimizer's {len(sizes)} param groups (of {sizes}) hold: "
        f"{reason}. Pass param_names as one list of names per group (e.g. from optimizer.param_groups)"
    )


#: Per-parameter state entries shaped like their parameter.
_FULL_SIZE = ("exp_avg", "exp_avg_sq", "momentum_buffer", "square_avg", "sum", "exp_inf", "ax", "prev", "acc_delta")


def _state_shapes(state_dict: Mapping[str, Any]) -> List[List[Optional[Tuple[int, ...]]]]:
    """For each group, each position's parameter shape as its state shows it (None: no state)."""
    state = state_dict["state"]
    out = []
    for group in state_dict["param_groups"]:
        shapes: List[Optional[Tuple[int, ...]]] = []
        for index in group["params"]:
            entry = state.get(index, state.get(str(index), {}))
            tensor = next((entry[key] for key in _FULL_SIZE if isinstance(entry.get(key), torch.Tensor)), None)
            shapes.append(tuple(tensor.shape) if tensor is not None else None)
        out.append(shapes)
    return out


def _interleavings(flat: Sequence[str], sizes: Sequence[int], expected: List[List[Optional[Tuple[int, ...]]]],
                   shapes: Mapping[str, Tuple[int, ...]], limit: int = 200_000):
    """How many ways (0, 1 or 2 meaning "several") the names in model order split into groups of
    ``sizes``, each group keeping model order, with every state shape matching its parameter;
    and one such split. None when the search would be too large."""
    groups = len(sizes)
    layer: Dict[Tuple[int, ...], Tuple[int, Any]] = {tuple([0] * groups): (1, None)}
    history = [layer]
    for name in flat:
        following: Dict[Tuple[int, ...], Tuple[int, Any]] = {}
        for counts, (ways, _) in layer.items():
            for group in range(groups):
                position = counts[group]
                if position >= sizes[group]:
                    continue
                shape = expected[group][position]
                if shape is not None and tuple(shape) != tuple(shapes[name]):
                    continue
                step = counts[:group] + (position + 1,) + counts[group + 1:]
                total, parent = following.get(step, (0, (counts, group)))
                following[step] = (min(2, total + ways), parent)
        if len(following) > limit:
            return None
        layer = following
        history.append(layer)
    final = tuple(sizes)
    if final not in layer:
        return 0, None
    split: List[List[str]] = [[] for _ in sizes]
    counts = final
    for index in range(len(flat), 0, -1):
        previous, group = history[index][counts][1]
        split[group].append(flat[index - 1])
        counts = previous
    return layer[final][0], [list(reversed(names)) for names in split]


def model_param_order(checkpoint: Checkpoint, opt: OptimizerState) -> List[str]:
    """The optimizer's parameters in model order (the order ``model.parameters()`` yields)."""
    held = set(opt.param_names)
    ordered = [name for name in checkpoint.model if name in held]
    if len(ordered) != len(held):  # names the model mapping lacks keep the optimizer's order
        ordered += [name for name in opt.param_names if name not in set(ordered)]
    return ordered


def fit_groups(checkpoint: Checkpoint, opt: OptimizerState, target: str, where: str) -> Tuple[OptimizerState, List[int]]:
    """``opt`` regrouped for a target: ``"keep"`` the source's groups, ``"one"`` group in model
    order, ``"auto"`` one group when that loses nothing (else keep, with a note),
    ``"hf-trainer"`` Trainer's decay / no-decay groups. Returns it and the group mapping."""
    if target == "keep" or (target in ("auto", "one") and len(opt.param_groups) == 1):
        return opt, list(range(len(opt.param_groups)))
    order = model_param_order(checkpoint, opt)
    if target == "hf-trainer":
        shapes = shapes_of(checkpoint.model)
        layernorm = checkpoint.metadata.get("layernorm_params")
        groups = [names for names in N.hf_trainer_groups(order, set(layernorm) if layernorm else None, shapes)]
        groups = [names for names in groups if names] or [order]
        if len(groups) == 1:  # a model without no-decay parameters: Trainer still builds two groups
            raise CheckpointError(f"{where}: every parameter would take weight decay, but Trainer always builds "
                                  "a second (no-decay) group; this model cannot be written as an hf-trainer checkpoint")
    elif target in ("one", "auto"):
        groups = [order]
    else:
        raise CheckpointError(f"unknown param_groups {target!r}; choose keep, one, auto or hf-trainer")
    try:
        regrouped = regroup(opt, groups, where)
    except CheckpointError:
        if target != "auto":
            raise
        checkpoint.note(f"{where}: kept the source's {len(opt.param_groups)} param groups (their hyperparameters "
                        "differ); the resuming optimizer must be built with the same groups")
        return opt, list(range(len(opt.param_groups)))
    return regrouped, group_mapping(opt, regrouped)


def regroup_scheduler(state: Mapping[str, Any], mapping: Sequence[int], where: str) -> Dict[str, Any]:
    """A scheduler ``state_dict()`` whose per-group lists follow ``mapping`` (target group ->
    source group). Merged groups must agree, or the schedule would change."""
    out = copy.deepcopy(dict(state))
    for key in _PER_GROUP_KEYS:
        values = out.get(key)
        if not isinstance(values, list) or list(mapping) == list(range(len(values))):
            continue
        sources = set(mapping)
        if max(sources) >= len(values):
            raise CheckpointError(f"{where}: scheduler {key} has {len(values)} entries, the optimizer more groups")
        dropped = [index for index in range(len(values)) if index not in sources]
        for index in dropped:
            if _plain(values[index]) != _plain(values[mapping[0]]):
                raise CheckpointError(
                    f"{where}: merging param groups would drop a scheduler {key} entry that differs "
                    f"({values[index]!r} vs {values[mapping[0]]!r}); keep the groups (param_groups='keep')"
                )
        out[key] = [copy.deepcopy(values[source]) for source in mapping]
    if isinstance(out.get("_schedulers"), list):
        out["_schedulers"] = [regroup_scheduler(sub, mapping, where) for sub in out["_schedulers"]]
    return out


def _plain(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return value


def optimizer_for_target(checkpoint: Checkpoint, *, where: str, param_groups: str = "auto", layout: str = "torch",
                         approximate: bool = False) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """The checkpoint's optimizer and scheduler state dicts, positional, for a target that builds
    its optimizer from ``model.parameters()`` (``param_groups`` as in ``fit_groups``)."""
    optimizers, schedulers = [], []
    mappings = []
    for number, opt in enumerate(checkpoint.optimizers):
        label = where if len(checkpoint.optimizers) == 1 else f"{where} (optimizer {number})"
        fitted, mapping = fit_groups(checkpoint, opt, param_groups, label)
        optimizers.append(from_hub(fitted, where=label, layout=layout, approximate=approximate))
        mappings.append(mapping)
    for state in checkpoint.schedulers:
        mapping = mappings[0] if len(mappings) == 1 else None
        schedulers.append(regroup_scheduler(state, mapping, where) if mapping is not None else copy.deepcopy(state))
    return optimizers, schedulers


# -- model-side transforms ------------------------------------------------------------------

def rename(checkpoint: Checkpoint, rules: "N.RenameRules") -> Checkpoint:
    """Apply rename rules to model keys and to the optimizer's parameter names alike."""
    mapping = rules.mapping(list(checkpoint.model))
    model = _remap(checkpoint.model, mapping)
    optimizers = []
    for opt in checkpoint.optimizers:
        groups = []
        for group in opt.param_groups:
            renamed = dict(group)
            renamed["params"] = [mapping.get(name, name) for name in group["params"] if mapping.get(name, name) is not None]
            groups.append(renamed)
        state = {mapping.get(name, name): entry for name, entry in opt.state.items() if mapping.get(name, name) is not None}
        optimizers.append(OptimizerState(opt.algorithm, groups, state, dict(opt.conventions)))
    return Checkpoint(model, optimizers, checkpoint.schedulers, checkpoint.step, checkpoint.rng, checkpoint.metadata)


def _remap(model: Mapping[str, torch.Tensor], mapping: Mapping[str, Optional[str]]) -> Mapping[str, torch.Tensor]:
    if isinstance(model, LazyStateDict):
        loaders = {new: (lambda old=old: model[old]) for old, new in mapping.items() if new is not None}
        info = {new: model.info(old) for old, new in mapping.items() if new is not None and old in model._info}
        aliases = {mapping[key]: mapping[source] for key, source in model.aliases.items()
                   if mapping.get(key) is not None and mapping.get(source) is not None}
        return LazyStateDict(loaders, info, aliases)
    return {new: model[old] for old, new in mapping.items() if new is not None}


def cast(checkpoint: Checkpoint, dtype: torch.dtype) -> Checkpoint:
    """Model floating-point tensors in ``dtype`` (optimizer state keeps its precision); tied
    tensors stay shared."""
    model = checkpoint.model
    if isinstance(model, LazyStateDict):
        def loader(name):
            return lambda: _cast(model[name], dtype)
        info = {}
        for name in model:
            old, shape = model.info(name)
            info[name] = (dtype if old.is_floating_point else old, shape)
        cast_model: Mapping[str, torch.Tensor] = LazyStateDict({name: loader(name) for name in model}, info,
                                                               model.aliases)
    else:
        done: Dict[int, torch.Tensor] = {}
        cast_model = {}
        for name, tensor in model.items():
            key = id(tensor)
            if key not in done:
                done[key] = _cast(tensor, dtype)
            cast_model[name] = done[key]
    return Checkpoint(cast_model, checkpoint.optimizers, checkpoint.schedulers, checkpoint.step, checkpoint.rng,
                      dict(checkpoint.metadata))


def _cast(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return tensor.to(dtype) if tensor.is_floating_point() else tensor


def materialise(model: Mapping[str, torch.Tensor], progress: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """A plain dict of the model's tensors (loading a lazy mapping one tensor at a time, with a
    progress bar titled ``progress`` when large); tied keys of a lazy mapping become the same
    tensor, as ``state_dict()`` gives them."""
    if not isinstance(model, LazyStateDict):
        return dict(model)
    from ._io import with_progress

    out: Dict[str, torch.Tensor] = {}
    for name in with_progress(list(model), model, progress):
        source = model.aliases.get(name)
        out[name] = out[source] if source in out else model[name]
    return out


def restore_tied(model: Dict[str, torch.Tensor], tied: Mapping[str, str]) -> Dict[str, torch.Tensor]:
    """Add each missing tied key ``{missing: source}`` as the source tensor itself."""
    for missing, source in tied.items():
        if missing not in model and source in model:
            model[missing] = model[source]
    return model
