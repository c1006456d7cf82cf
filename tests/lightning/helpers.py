"""A tiny model, deterministic data and recording helpers for the strategy's tests."""
import contextlib
import logging
import math

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

QUIET = dict(
    accelerator="cpu",
    devices=1,
    enable_progress_bar=False,
    enable_model_summary=False,
    logger=False,
    enable_checkpointing=False,
)


def dataset(batches: int = 5, batch_size: int = 4, seed: int = 0) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    n = batches * batch_size
    return TensorDataset(torch.randn(n, 4, generator=generator), torch.randn(n, 2, generator=generator))


def loader(batches: int = 5, batch_size: int = 4, **kwargs) -> DataLoader:
    return DataLoader(dataset(batches, batch_size), batch_size=batch_size, **kwargs)


class TinyModel(L.LightningModule):
    """A 4 -> 3 -> 2 MLP whose optimizers and schedulers come from a function of the module."""

    def __init__(self, configure=None, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
        self._configure = configure or (lambda module: torch.optim.SGD(module.parameters(), lr=0.1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        return self._configure(self)


class RecordHyperparameters(L.Callback):
    """Records lr and weight_decay of every param group right before each optimizer step.

    The hook runs inside the training step, which the device checks: a tensor value is
    copied there (an operation of the step) and read as a number only afterwards, when
    ``values`` is asked for, as a step closure would read it.
    """

    def __init__(self):
        self._copies = []  # one entry per optimizer step: [(lr, wd) per group]

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self._copies.append([(_copy(group["lr"]), _copy(group.get("weight_decay"))) for group in optimizer.param_groups])

    @property
    def values(self):
        """Per optimizer step, ``[(lr, wd) per group]`` as numbers."""
        return [[(_float(lr), _float(wd)) for lr, wd in step] for step in self._copies]

    def lrs(self, group: int = 0):
        return [step[group][0] for step in self.values]

    def wds(self, group: int = 0):
        return [step[group][1] for step in self.values]


def _copy(value):
    # Tensor-valued schedules update one tensor in place: keep its value, not the tensor.
    return value.detach().clone() if isinstance(value, torch.Tensor) else value


def _float(value):
    return float(value) if isinstance(value, torch.Tensor) else value


def linear(initial, end, total, t):
    return initial + (end - initial) * min(t, total) / total


def cosine(initial, end, total, t):
    return end + (initial - end) * 0.5 * (1.0 + math.cos(math.pi * min(t, total) / total))


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def rank_zero_lines():
    """The messages Lightning's ``rank_zero_info`` logs inside the block (a list, filled as they come).

    ``rank_zero_info`` logs to whichever logger the last imported of Lightning's two
    ``rank_zero`` modules (fabric's or pytorch's) installed, so that logger is read.
    """
    from lightning_utilities.core import rank_zero

    logger, handler = rank_zero.log, _Lines()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
