"""Libraries known to read step values on the host or to branch on them, and what to do about each.

A violation is located at the user's line, but when the line that broke the contract is
inside torch.optim, torchmetrics, torch.nn or Lightning, the user's line only called it:
blaming that line ("Python control flow on the step number") sends the user looking in
the wrong place. ``library_call`` walks from the operation out to the user's frame and
names the innermost known-library frame on the way, with the advice for that library
and function (the argument that avoids the read, or the replacement to use).

Libraries are named by module, located without being imported: this module imports
none of them.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Optional, Tuple

from .location import Location, is_library_file, is_user_code, module_paths, realpath


def _locate(modules: Tuple[str, ...]) -> Tuple[str, ...]:
    """Path prefixes of dotted modules, found from their top-level package without importing it.

    ``importlib.util.find_spec("lightning.pytorch.utilities.grads")`` would import Lightning;
    a plain loop that never imported it should not pay for that at its first violation.
    """
    paths: Tuple[str, ...] = ()
    for module in modules:
        top, _, rest = module.partition(".")
        for root in module_paths([top]):
            if not rest:
                paths += (root,)
                continue
            base = os.path.join(root, *rest.split("."))
            if os.path.isdir(base):
                paths += (base + os.sep,)
            elif os.path.isfile(base + ".py"):
                paths += (base + ".py",)
    return paths


@dataclass(frozen=True)
class LibraryCall:
    """The line inside a known library that read the host or branched, and what to do about it."""

    #: The library, as users import it (``"torch.optim"``).
    library: str
    #: The library's own line.
    location: Location
    #: What the user can do: the argument, replacement or place that avoids it.
    advice: str

    def __str__(self) -> str:
        return f"inside {self.library}, at {self.location}"


@dataclass(frozen=True)
class _Rule:
    library: str
    # The modules or packages it covers (a library may install under several names).
    modules: Tuple[str, ...]
    # Function names (``co_name``) the rule is about, matched by suffix; () for any.
    functions: Tuple[str, ...]
    advice: str

    def matches(self, code) -> bool:
        name = code.co_name
        # A library's protocol methods (Parameter.__repr__, __format__, __bool__) do what the
        # user's own line asked for: printing a parameter is the user's read.
        if name.startswith("__") and name.endswith("__"):
            return False
        return not self.functions or name.endswith(self.functions)


_WSE_OPTIM = (
    "torch.optim optimizers decide in Python on their hyperparameters (`if weight_decay != 0:`, "
    "`if momentum != 0:`) and read tensor-valued ones on the host, so a schedule that moves such a "
    "value (away from 0, for instance) changes the operations they run. Use {optimizer}: it runs "
    "the same operations for every value and takes tensor hyperparameters without reading them."
)
_METRIC_AFTER_STEP = (
    "or update the metric after the step, where values may be read (in a step closure; under "
    "Lightning, in on_train_batch_end from the outputs of training_step)"
)

# Specific rules before the generic rule of their library: the first rule that matches a
# frame decides.
_RULES = (
    _Rule(
        "torch.optim",
        ("torch.optim",),
        (),
        _WSE_OPTIM,
    ),
    _Rule(
        "torchmetrics",
        ("torchmetrics",),
        ("_tensor_validation", "_arg_validation", "_check_same_shape", "_input_format_classification"),
        "torchmetrics checks the values of a metric's inputs on the host (validate_args=True, the "
        "default): create the metric with validate_args=False, " + _METRIC_AFTER_STEP + ".",
    ),
    _Rule(
        "torchmetrics",
        ("torchmetrics",),
        ("normalize_logits_if_needed",),
        "torchmetrics tests on the host whether float predictions are probabilities already (on a "
        "CPU; on an accelerator it selects with torch.where): give the metric class predictions "
        "((logits > 0).long(), logits.argmax(-1)), " + _METRIC_AFTER_STEP + ".",
    ),
    _Rule(
        "torchmetrics",
        ("torchmetrics",),
        ("_cast_and_nan_check_input",),
        "torchmetrics' aggregation metrics (MeanMetric, SumMetric, MaxMetric, ...) look for NaNs on "
        "the host (nan_strategy='warn', the default): create the metric with nan_strategy='disable', "
        + _METRIC_AFTER_STEP + ".",
    ),
    _Rule(
        "torchmetrics",
        ("torchmetrics",),
        (),
        "torchmetrics reads a metric's inputs on the host while it updates (argument and value "
        "checks): pass validate_args=False where the metric takes it, " + _METRIC_AFTER_STEP + ".",
    ),
    _Rule(
        "torch.nn",
        ("torch.nn",),
        ("_detect_is_causal_mask",),
        "nn.TransformerEncoder, nn.TransformerDecoder and nn.Transformer compare an attention mask "
        "with a causal one on the host when they are not told whether it is causal: pass "
        "is_causal=True with the causal mask (encoder(x, mask=mask, is_causal=True); for "
        "nn.Transformer, src_is_causal / tgt_is_causal), which torch takes as given.",
    ),
    _Rule(
        "torch.nn",
        ("torch.nn",),
        ("clip_grad_norm_", "clip_grad_norm", "_clip_grads_with_norm_", "_get_total_norm"),
        "clip_grad_norm_(..., error_if_nonfinite=True) reads the total norm on the host to check "
        "it: leave error_if_nonfinite=False (the default), and look at the norm after the step.",
    ),
    _Rule(
        "torch.nn",
        ("torch.nn",),
        (),
        "torch.nn reads a tensor's value on the host here (a check or a branch on data): give the "
        "module the argument that answers the question instead (a hint such as is_causal=, a "
        "fixed size), or move the call out of the step.",
    ),
    _Rule(
        "Lightning",
        ("lightning.pytorch.utilities.grads", "pytorch_lightning.utilities.grads"),
        ("grad_norm",),
        "Lightning's grad_norm() builds the total norm with torch.tensor(list of norms), which reads "
        "every norm on the host: compute the norms in the step (p.grad.norm()) and their total with "
        "torch.linalg.vector_norm(torch.stack(norms)), then self.log them (logged values are read "
        "after the step).",
    ),
)


class _Matcher:
    """Finds the rules that apply to a frame's code, once per code object."""

    def __init__(self):
        self._paths: Optional[Tuple[Tuple[str, ...], ...]] = None
        self._rules: dict = {}

    def rule(self, code) -> Optional[_Rule]:
        try:
            return self._rules[code]
        except KeyError:
            pass
        if self._paths is None:
            self._paths = tuple(_locate(rule.modules) for rule in _RULES)
        found = None
        filename = code.co_filename
        if is_library_file(filename):
            path = realpath(filename)
            for rule, prefixes in zip(_RULES, self._paths):
                if prefixes and path.startswith(prefixes) and rule.matches(code):
                    found = rule
                    break
        self._rules[code] = found
        return found


_MATCHER = _Matcher()


def library_call(frame=None, optimizer: Optional[str] = None) -> Optional[LibraryCall]:
    """The innermost frame of a known library between ``frame`` and the user's code, if any.

    ``frame`` defaults to the caller's. ``optimizer`` names the optimizer whose step was
    running (its class name), for the advice to name the ``wse.optim`` replacement.
    """
    if frame is None:
        frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if is_user_code(code):
            return None
        rule = _MATCHER.rule(code)
        if rule is not None:
            location = Location(code.co_filename, frame.f_lineno, code.co_name)
            return LibraryCall(rule.library, location, rule.advice.format(optimizer=_replacement(optimizer)))
        frame = frame.f_back
    return None


def _replacement(optimizer: Optional[str]) -> str:
    if optimizer:
        from .. import optim

        if isinstance(getattr(optim, optimizer, None), type):
            return f"wse.optim.{optimizer}, the wse.optim optimizer of the same name"
    return "a wse.optim optimizer (wse.optim.available_optimizers() lists them)"
