"""A tiny Lightning model with dropout, deterministic data, and the WSD closed forms the tests compare with."""
import math
import os

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

import wse.schedules as S
from wse.compat.pytorch_accelerated import WSDLrScheduler
from wse.optim.lr_scheduler import LRScheduler

QUIET = dict(
    accelerator="cpu",
    devices=1,
    enable_progress_bar=False,
    enable_model_summary=False,
    logger=False,
    enable_checkpointing=False,
    num_sanity_val_steps=0,
)

BASE_LR = 0.01


def dataset(samples: int = 32, seed: int = 0) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(samples, 4, generator=generator), torch.randn(samples, 2, generator=generator))


def loader(samples: int = 32, batch_size: int = 8, shuffle: bool = True, **kwargs) -> DataLoader:
    """Four batches per epoch by default, so that every checkpoint step of the tests ends an epoch."""
    return DataLoader(dataset(samples), batch_size=batch_size, shuffle=shuffle, **kwargs)


def pa_wsd(optimizer, total_steps=40, num_checkpoints=2, decay_phase_ratio=0.2, num_warmup_steps=4, **kwargs):
    return WSDLrScheduler(optimizer, total_steps=total_steps, num_warmup_steps=num_warmup_steps,
                          decay_phase_ratio=decay_phase_ratio, num_checkpoints=num_checkpoints, **kwargs)


class WarmupStableDecayLR(LRScheduler):
    """A wse.optim learning-rate scheduler bound to wse.schedules.WarmupStableDecay (checkpoints 20, 40)."""

    def __init__(self, optimizer):
        super().__init__(optimizer, total_iters=None)

    def _build_schedule(self):
        return S.WarmupStableDecay(BASE_LR, (20, 40), 0.2, 1e-3, "minus_sqrt", warmup_steps=4)


class WSDModel(L.LightningModule):
    """4 -> 8 -> 2 with dropout (so that branches must restore the RNG), AdamW, a scheduler from a function.

    Records the learning rate each optimizer update runs with, in ``lrs`` (branch steps
    included, since they run ``training_step`` too).
    """

    def __init__(self, make_scheduler=pa_wsd, seed: int = 0, dropout: float = 0.2):
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Dropout(dropout), torch.nn.Linear(8, 2))
        self.make_scheduler = make_scheduler
        self.lrs = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.lrs.append(float(self.trainer.optimizers[0].param_groups[0]["lr"]))
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=BASE_LR, weight_decay=0.01)
        scheduler = self.make_scheduler(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def lr_scheduler_step(self, scheduler, metric):
        # pytorch-accelerated's and Megatron's schedulers are not torch LRSchedulers.
        if hasattr(scheduler, "num_steps") and not hasattr(scheduler, "last_epoch"):
            scheduler.step(1)
        else:
            scheduler.step()


def fit(tmp_path=None, callbacks=(), max_steps=40, model=None, data=None, **kwargs):
    model = model or WSDModel()
    L.seed_everything(0, verbose=False)
    trainer = L.Trainer(max_steps=max_steps, callbacks=list(callbacks), default_root_dir=tmp_path, **{**QUIET, **kwargs.pop("trainer", {})})
    trainer.fit(model, data if data is not None else loader(), **kwargs)
    return trainer, model


def files_in(directory):
    return sorted(name for name in os.listdir(directory) if not name.startswith("."))


# -- closed forms ----------------------------------------------------------------------


def geometric(total_steps, count):
    """Checkpoints each twice the previous, the last at the end of the run."""
    first = total_steps // 2 ** (count - 1)
    return [first * 2**i for i in range(count)]


def wsd_value(t, base=BASE_LR, total_steps=40, count=2, ratio=0.2, warmup=4, warmup_start=1e-6, floor=1e-6):
    """The WSD learning rate at step ``t``: linear warmup, stable, sqrt decay to ``floor * base`` before each checkpoint."""
    if t < warmup:
        return warmup_start + t / warmup * (base - warmup_start)
    start = 0
    for end in geometric(total_steps, count):
        if t < end:
            decay = int((end - start) * ratio)
            pre = end - decay
            if t < pre:
                return base
            return base * (floor + (1 - floor) * (1 - math.sqrt((t - pre) / decay)))
        start = end
    return base * floor


def pa_update_lrs(updates, **schedule):
    """The lr of optimizer updates 1..updates under a pytorch-accelerated scheduler.

    Construction writes step 0 and the n-th ``step()`` (after update n) writes step
    n - 1, so update 1 runs at step 0 and update n >= 2 at step n - 2.
    """
    return [wsd_value(max(n - 2, 0), **schedule) for n in range(1, updates + 1)]
