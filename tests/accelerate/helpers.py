"""A small regression problem and the Accelerate loop a user writes, for the integration's tests."""
from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader, TensorDataset

LR0, LR1, WD0, WD1, TOTAL = 1e-2, 1e-4, 0.1, 0.01, 40


def cosine(initial: float, end: float, total: int, step: int) -> float:
    """Cerebras' CosineDecay closed form at ``step`` (clamped to ``total``)."""
    step = min(step, total)
    return end + (initial - end) * 0.5 * (1 + math.cos(math.pi * step / total))


def dataset(samples: int = 96, seed: int = 0) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, 6, generator=generator)
    return TensorDataset(x, torch.sin(x.sum(dim=1, keepdim=True)))


def loader(batch_size: int = 8, shuffle: bool = False, **options) -> DataLoader:
    return DataLoader(dataset(), batch_size=batch_size, shuffle=shuffle, drop_last=True, **options)


def model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))


def adamw_with_schedules(module: torch.nn.Module):
    from wse.optim.lr_scheduler import CosineDecayLR
    from wse.optim.weight_decay_scheduler import CosineDecayWD

    optimizer = torch.optim.AdamW(module.parameters(), lr=LR0, weight_decay=WD0)
    return optimizer, CosineDecayLR(optimizer, LR0, LR1, total_iters=TOTAL), CosineDecayWD(optimizer, WD0, WD1, total_iters=TOTAL)


def value(x) -> float:
    return float(x.item()) if isinstance(x, torch.Tensor) else float(x)
