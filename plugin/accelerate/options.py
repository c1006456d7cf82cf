"""How strictly the Accelerate integration enforces its rules (the device validates its own settings)."""
from __future__ import annotations

import warnings

from .errors import WSEAccelerateWarning

STRICT_MODES = ("raise", "warn", "off")


def validate_strict(strict: str) -> str:
    """``strict`` governs the integration's own refusals (lazy optimizer state, launch)."""
    if strict not in STRICT_MODES:
        raise ValueError(
            f"wse.accelerate.prepare: `strict` must be one of {STRICT_MODES}, got {strict!r}. 'raise' refuses "
            f"a training setup that breaks the rules, 'warn' warns and goes on, 'off' goes on silently."
        )
    return strict


def enforce(strict: str, error_type: type, message: str) -> None:
    """Raise ``error_type(message)``, warn, or do nothing, as ``strict`` says."""
    if strict == "raise":
        raise error_type(message)
    if strict == "warn":
        warnings.warn(message, WSEAccelerateWarning, stacklevel=3)
