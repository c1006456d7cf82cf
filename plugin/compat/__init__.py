"""Other libraries' schedulers on wse's closed-form schedules: pytorch-accelerated and Megatron-Core.

``wse.compat.pytorch_accelerated`` mirrors ``pytorch_accelerated.schedulers`` and
``wse.compat.megatron`` mirrors ``megatron.core.optimizer_param_scheduler``: same names,
arguments, defaults and state-dict keys, with every value computed from a
``wse.schedules`` closed form.
"""
from . import megatron, pytorch_accelerated

__all__ = ["megatron", "pytorch_accelerated"]
