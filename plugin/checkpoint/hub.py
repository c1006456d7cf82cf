"""The in-memory form every checkpoint format is read into and written from.

Translation between formats is reader -> hub -> writer. The hub speaks torch's language:

* model tensors are keyed by their bare ``state_dict()`` names (no ``model.``, ``module.``
  or ``_orig_mod.`` prefix); a tied weight appears under every key the model's
  ``state_dict()`` lists, as the same tensor or an equal one;
* optimizer state is keyed by parameter NAME (not by position), in the layout torch.optim's
  class of the same name keeps (``step`` as a 0-d float32 tensor for Adam/AdamW, ...);
* hyperparameters use torch.optim's names; a group may also carry keys torch's class lacks
  (``correct_bias``, ``l2_regularization_rate``): a writer whose target has no such key
  refuses unless the value is the neutral one (True / 0.0);
* where the source's definition of an algorithm differs from torch's, ``conventions`` says
  so (see ``CONVENTIONS``) so that a writer can translate or refuse instead of silently
  resuming a different computation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import torch

__all__ = [
    "Checkpoint",
    "OptimizerState",
    "LazyStateDict",
    "CheckpointError",
    "CONVENTIONS",
    "TORCH_CONVENTIONS",
]

#: The conventions an ``OptimizerState`` may declare, with torch's value first.
#: An absent key means torch's definition.
CONVENTIONS: Dict[str, Tuple[str, ...]] = {
    # where eps enters Adam-like updates: torch adds it to sqrt(v_hat) (bias-corrected);
    # legacy transformers AdamW and cerebras-pytorch add it to sqrt(v) and fold the bias
    # corrections into the step size: lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps).
    "eps": ("sqrt_v_hat", "sqrt_v"),
    # when decoupled weight decay is applied: torch AdamW multiplies p by (1 - lr*wd) before
    # the update; legacy transformers AdamW subtracts lr*wd*p from the already updated p.
    "weight_decay": ("before_update", "after_update"),
}
# Besides these, ``conventions["definition"] = "transformers"`` marks transformers' Adafactor
# (relative steps, update clipping, parameter scaling), which is not torch.optim.Adafactor
# though their second moments correspond; it is not a difference ``differs_from_torch`` lists.
TORCH_CONVENTIONS: Dict[str, str] = {key: values[0] for key, values in CONVENTIONS.items()}


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, translated or written; the message names the file
    and key at fault and what to do about it."""


@dataclass
class OptimizerState:
    """One optimizer's state, keyed by parameter name.

    ``algorithm`` is the torch.optim class name ("AdamW", "Adam", "SGD", "Adafactor", ...), or
    the ``wse.optim`` class name for algorithms torch lacks ("Lamb", "Lion").
    ``param_groups`` are torch's group dicts, with ``params`` a list of parameter names in the
    order the optimizer holds them. ``state`` maps a parameter name to torch.optim's per-
    parameter state for that algorithm; a parameter without an entry had no state yet.
    ``conventions`` records where the source's algorithm differs from torch's (``CONVENTIONS``).
    """

    algorithm: str
    param_groups: List[Dict[str, Any]]
    state: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    conventions: Dict[str, Any] = field(default_factory=dict)

    @property
    def param_names(self) -> List[str]:
        """Every parameter name in optimizer order (group 0 first)."""
        return [name for group in self.param_groups for name in group["params"]]

    def convention(self, key: str) -> str:
        """The source's convention for ``key``, torch's when it declared none."""
        return self.conventions.get(key, TORCH_CONVENTIONS[key])

    def differs_from_torch(self) -> Dict[str, str]:
        """The conventions in which this state's algorithm is not torch's."""
        return {key: value for key, value in self.conventions.items()
                if key in TORCH_CONVENTIONS and value != TORCH_CONVENTIONS[key]}


@dataclass
class Checkpoint:
    """A training checkpoint in the hub form.

    ``model`` maps bare parameter/buffer names to tensors; it may be a ``LazyStateDict`` that
    loads each tensor when accessed, so large files stream through a conversion.
    ``schedulers`` are torch LR-scheduler ``state_dict()``s (``last_epoch``, ``_step_count``,
    ``base_lrs``, ``_last_lr``, ...), one per scheduler in the source's order.
    ``step`` is the global optimizer step (the number of optimizer steps taken), or None when
    the source does not record it. ``rng`` holds RNG states when the source has them
    (``{"python": ..., "numpy": ..., "cpu": ByteTensor, "cuda": [...]}``).
    ``metadata`` carries the source ``format``, library ``versions``, an HF ``config`` dict,
    ``epoch``, ``notes`` about skipped files, and anything a writer may reuse.
    """

    model: Mapping[str, torch.Tensor]
    optimizers: List[OptimizerState] = field(default_factory=list)
    schedulers: List[Dict[str, Any]] = field(default_factory=list)
    step: Optional[int] = None
    rng: Optional[Dict[str, Any]] = None
    metadata: Dict[str, Any] = field(default_factory=dict)

    def note(self, message: str) -> None:
        """Record something the reader skipped or assumed; ``wse inspect`` and convert show it."""
        self.metadata.setdefault("notes", []).append(message)

    def model_only(self) -> "Checkpoint":
        """The same model tensors without optimizer, scheduler, step or RNG state."""
        return Checkpoint(model=self.model, metadata=dict(self.metadata))


class LazyStateDict(Mapping):
    """A read-only ``{name: tensor}`` mapping that loads each tensor only when it is accessed.

    ``loaders`` maps each name to a zero-argument function returning the tensor. ``info`` maps
    names to ``(dtype, shape)`` where the file says so without loading (safetensors, H5), so
    ``wse inspect`` reads no tensor data. Tensors are not cached: a writer that streams keeps
    one tensor in memory at a time. ``aliases`` maps a tied key to the key it shares storage
    with (``{"lm_head.weight": "transformer.wte.weight"}``), so writers that keep aliasing
    (torch.save) store it once and readers know the tie.
    """

    def __init__(self, loaders: Mapping[str, Callable[[], torch.Tensor]],
                 info: Optional[Mapping[str, Tuple[torch.dtype, Tuple[int, ...]]]] = None,
                 aliases: Optional[Mapping[str, str]] = None):
        self._loaders = dict(loaders)
        self._info = dict(info or {})
        self.aliases = {key: source for key, source in (aliases or {}).items() if key in self._loaders}

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            load = self._loaders[name]
        except KeyError:
            raise KeyError(name) from None
        return load()

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)

    def info(self, name: str) -> Tuple[torch.dtype, Tuple[int, ...]]:
        """``(dtype, shape)`` of ``name``, loading the tensor only when the file did not say."""
        if name not in self._info:
            tensor = self[name]
            return tensor.dtype, tuple(tensor.shape)
        return self._info[name]

    def __repr__(self) -> str:
        return f"LazyStateDict({len(self)} tensors)"


def tensor_info(model: Mapping[str, torch.Tensor], name: str) -> Tuple[torch.dtype, Tuple[int, ...]]:
    """``(dtype, shape)`` of one model tensor, without loading it when the mapping is lazy."""
    if isinstance(model, LazyStateDict):
        return model.info(name)
    tensor = model[name]
    return tensor.dtype, tuple(tensor.shape)
