"""How strictly the Accelerate integration enforces its rules (the device validates its own settings).

The strictness rules are ``wse.rules``' (shared with ``WSEStrategy``), bound to
``wse.accelerate.prepare``'s name and warning category. Bound with ``partial`` rather
than wrapped, so that a warning is still attributed to the caller's caller, as
``rules.enforce`` intends.
"""
from __future__ import annotations

import functools

from .. import rules
from .errors import WSEAccelerateWarning

validate_strict = functools.partial(rules.validate_strict, owner="wse.accelerate.prepare")
enforce = functools.partial(rules.enforce, category=WSEAccelerateWarning)

#: How a refusal tells the user of ``wse.accelerate.prepare`` to train anyway.
RELAX = "pass strict='warn' or strict='off' to wse.accelerate.prepare"
