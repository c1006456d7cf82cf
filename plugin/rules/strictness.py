"""How strictly a rule is enforced: ``strict="raise"``, ``"warn"`` or ``"off"``, one meaning everywhere."""
from __future__ import annotations

import warnings

from .errors import WSERuleWarning

STRICT_MODES = ("raise", "warn", "off")


def validate_strict(strict: str, owner: str = "strict") -> str:
    """Return ``strict`` if it is one of ``STRICT_MODES``; else say what it must be.

    ``owner`` names where the user passed it (``"WSEStrategy"``, ``"wse.accelerate.prepare"``),
    so that the message points at their own line of code.
    """
    if strict not in STRICT_MODES:
        raise ValueError(
            f"{owner}: `strict` must be one of {STRICT_MODES}, got {strict!r}. 'raise' refuses a training "
            f"setup that breaks the rules, 'warn' warns and goes on, 'off' goes on silently."
        )
    return strict


def enforce(strict: str, error_type: type, message: str, category: type = WSERuleWarning) -> None:
    """Raise ``error_type(message)``, warn with ``category``, or do nothing, as ``strict`` says.

    The warning is attributed to the caller of the function that called ``enforce``:
    the integration's entry point the user called, not the integration's internals.
    """
    if strict == "raise":
        raise error_type(message)
    if strict == "warn":
        warnings.warn(message, category, stacklevel=3)
