"""Methods that must run outside compiled graphs, switched to ``torch.compiler.disable`` only when needed.

A scheduler's Python step counters must advance outside a ``torch.compile`` graph (else
every new count specialises the graph). ``torch.compiler.disable`` does that, but using
it as a decorator imports ``torch._dynamo`` when the class is defined, which costs
seconds and would be paid by every ``import wse.optim`` (``wse schedule`` included). So
``host_only`` only marks the method, and ``keep_out_of_graphs(cls)`` wraps the marked
methods of a class once, when a scheduler switches to tensor values: the only mode in
which a compiled step contains it.
"""
from __future__ import annotations

_MARK = "__wse_host_only__"
_WRAPPED = "__wse_host_only_wrapped__"


def host_only(method):
    """Mark ``method`` to run outside compiled graphs (see ``keep_out_of_graphs``)."""
    setattr(method, _MARK, True)
    return method


def keep_out_of_graphs(cls: type) -> None:
    """Wrap every ``host_only`` method of ``cls`` and its bases in ``torch.compiler.disable`` (once)."""
    for klass in cls.__mro__:
        for name, value in list(vars(klass).items()):
            if getattr(value, _MARK, False) and not getattr(value, _WRAPPED, False):
                import torch

                wrapped = torch.compiler.disable(value)
                setattr(wrapped, _WRAPPED, True)
                setattr(klass, name, wrapped)
