"""The SGD step of cerebras-pytorch, on a bucket of tensors.

The momentum buffer starts at zero and is damped from the first step
(``buf = momentum * buf + (1 - dampening) * g``); torch.optim instead starts it at the
first gradient, undamped. With ``dampening == 0`` the two agree.
"""
from __future__ import annotations

from typing import List, Optional

import torch
from torch import Tensor

from ._foreach import Coefficient, add_scaled_, added_scaled, on_device, regularized_grads


def sgd(
    params: List[Tensor],
    grads: List[Tensor],
    momentum_buffers: Optional[List[Tensor]],
    *,
    lr: Coefficient,
    momentum: float,
    dampening: float,
    weight_decay: Coefficient,
    nesterov: bool,
    maximize: bool,
) -> None:
    """One SGD step on tensors of one device and dtype (buffers used when ``momentum != 0``)."""
    if not params:
        return
    lr = on_device(lr, params[0])
    grads = regularized_grads(grads, params, on_device(weight_decay, params[0]), maximize)
    if momentum != 0:
        torch._foreach_mul_(momentum_buffers, momentum)
        add_scaled_(momentum_buffers, grads, 1 - dampening)
        grads = added_scaled(grads, momentum_buffers, momentum) if nesterov else momentum_buffers
    add_scaled_(params, grads, -lr)
