"""Stopping at step 15 and resuming from Lightning's checkpoint equals an uninterrupted run."""
import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

import wse.optim
from wse.lightning import WSEStrategy
from wse.optim.lr_scheduler import CosineDecayLR, LinearLR, SequentialLR
from wse.optim.weight_decay_scheduler import CosineDecayWD

from .helpers import QUIET, RecordHyperparameters, TinyModel, loader

# Five batches an epoch, so that step 15 ends an epoch: Lightning resumes a plain
# DataLoader at an epoch boundary only.
BATCHES = 5
NO_CHECKPOINTS = dict(QUIET)
WITH_CHECKPOINTS = {k: v for k, v in QUIET.items() if k != "enable_checkpointing"}


def torch_adamw_torch_schedules(module):
    optimizer = torch.optim.AdamW(module.parameters(), lr=0.05, weight_decay=0.1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=40)
    wd = CosineDecayWD(optimizer, initial_val=0.1, end_val=0.0, total_iters=30)
    return [optimizer], [{"scheduler": cosine, "interval": "step"}, {"scheduler": wd, "interval": "step"}]


def torch_sgd_wse_schedules(module):
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    lr = SequentialLR(
        optimizer,
        [LinearLR(optimizer, 0.0, 0.1, total_iters=10), CosineDecayLR(optimizer, 0.1, 0.001, total_iters=20)],
        milestones=[10],
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": lr, "interval": "step"}}


def wse_adamw_wse_schedules(module):
    optimizer = wse.optim.AdamW(module.parameters(), lr=0.05, weight_decay=0.1)
    lr = SequentialLR(
        optimizer,
        [LinearLR(optimizer, 0.0, 0.05, total_iters=10), CosineDecayLR(optimizer, 0.05, 0.0005, total_iters=20)],
        milestones=[10],
    )
    wd = CosineDecayWD(optimizer, initial_val=0.1, end_val=0.0, total_iters=30)
    return [optimizer], [{"scheduler": lr, "interval": "step"}, {"scheduler": wd, "interval": "step"}]


def wse_sgd_tensor_valued_schedules(module):
    optimizer = wse.optim.SGD(module.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    lr = CosineDecayLR(optimizer, 0.1, 0.001, total_iters=30).enable_tensor_values()
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": lr, "interval": "step"}}


def _strategy(configure):
    # torch.optim.lr_scheduler writes Python floats, which the static-graph checks refuse.
    return WSEStrategy(check="off") if configure is torch_adamw_torch_schedules else "wse"


def _fit(configure, max_steps, callbacks=(), ckpt_path=None, checkpoints=False):
    module = TinyModel(configure)
    record = RecordHyperparameters()
    options = WITH_CHECKPOINTS if checkpoints else NO_CHECKPOINTS
    trainer = L.Trainer(strategy=_strategy(configure), max_steps=max_steps, callbacks=[record, *callbacks], **options)
    trainer.fit(module, loader(BATCHES), ckpt_path=ckpt_path)
    return module, trainer, record


def assert_identical(a, b, where="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_identical(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{index}]")
    else:
        assert a == b, where


@pytest.mark.parametrize(
    "configure",
    [torch_adamw_torch_schedules, torch_sgd_wse_schedules, wse_adamw_wse_schedules, wse_sgd_tensor_valued_schedules],
)
def test_resume_from_step_15_is_bit_identical_to_an_uninterrupted_run(configure, tmp_path):
    whole, whole_trainer, whole_record = _fit(configure, 30)

    checkpoint = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=15, save_top_k=-1)
    _fit(configure, 15, callbacks=[checkpoint], checkpoints=True)
    (path,) = tmp_path.iterdir()
    resumed, resumed_trainer, resumed_record = _fit(configure, 30, ckpt_path=str(path))

    assert resumed_trainer.global_step == 30
    assert resumed_record.values == whole_record.values[15:]
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    assert_identical(whole_trainer.optimizers[0].state_dict(), resumed_trainer.optimizers[0].state_dict(), "optimizer")
    for a, b in zip(whole_trainer.lr_scheduler_configs, resumed_trainer.lr_scheduler_configs):
        assert_identical(_schedule_state(a.scheduler), _schedule_state(b.scheduler), type(a.scheduler).__name__)


def _schedule_state(scheduler):
    # `_step_count` only feeds torch's "step order" warning; like cerebras-pytorch, the wse
    # schedulers keep their own count on load instead of the saved one.
    state = scheduler.state_dict()
    if hasattr(scheduler, "schedule"):
        state.pop("_step_count")
    return state
