"""The compat faces go wherever a scheduler goes: Lightning's default strategy, strategy "wse", Accelerate."""
import warnings

import lightning as L
import pytest
import torch

from wse.compat.megatron import OptimizerParamScheduler
from wse.compat.pytorch_accelerated import CosineLrScheduler, WSDLrScheduler
from wse.lightning import WSEStrategy

from .helpers import QUIET, RecordHyperparameters, TinyModel, loader

BATCHES_PER_EPOCH, EPOCHS = 4, 5
STEPS = BATCHES_PER_EPOCH * EPOCHS


def wsd(optimizer):
    return WSDLrScheduler(optimizer, total_steps=STEPS, num_warmup_steps=3, num_checkpoints=2, decay_phase_ratio=0.25)


def cosine(optimizer):
    return CosineLrScheduler(
        optimizer, total_num_epochs=EPOCHS, num_update_steps_per_epoch=BATCHES_PER_EPOCH, num_warmup_epochs=1,
        num_cooldown_epochs=1, lr_min=1e-4, warmup_starting_lr=1e-3,
    )


def megatron(optimizer):
    return OptimizerParamScheduler(
        optimizer, init_lr=1e-3, max_lr=1e-2, min_lr=1e-4, lr_warmup_steps=3, lr_decay_steps=STEPS,
        lr_decay_style="cosine", start_wd=0.01, end_wd=0.1, wd_incr_steps=STEPS, wd_incr_style="linear",
    )


FACES = {"WSDLrScheduler": wsd, "CosineLrScheduler": cosine, "OptimizerParamScheduler": megatron}


def optimizer_for(parameters):
    return torch.optim.AdamW(parameters, lr=1e-2, weight_decay=0.05)


def by_hand(make, steps_per_update, steps=STEPS):
    """lr and weight decay at each optimizer step, the scheduler stepped every ``steps_per_update`` steps."""
    optimizer = optimizer_for([torch.nn.Parameter(torch.zeros(1))])
    scheduler = make(optimizer)
    lrs, wds = [], []
    for step in range(steps):
        lrs.append(float(optimizer.param_groups[0]["lr"]))
        wds.append(float(optimizer.param_groups[0]["weight_decay"]))
        if (step + 1) % steps_per_update == 0:
            scheduler.step()
    return lrs, wds


def approx(values):
    return pytest.approx(values, rel=1e-12, abs=1e-15)


def fit(make, strategy):
    def configure(module):
        optimizer = optimizer_for(module.parameters())
        return [optimizer], [make(optimizer)]  # a bare scheduler, as users return them

    record = RecordHyperparameters()
    trainer = L.Trainer(strategy=strategy, max_epochs=EPOCHS, callbacks=[record], **QUIET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's own deprecations; none of these fail the run
        trainer.fit(TinyModel(configure), loader(batches=BATCHES_PER_EPOCH))
    return trainer, (record.lrs(), record.wds())


@pytest.mark.parametrize("name", FACES)
def test_lightning_default_strategy_steps_a_face_like_any_torch_scheduler(name):
    trainer, values = fit(FACES[name], "auto")
    assert len(values[0]) == STEPS
    # Lightning's default interval is the epoch.
    lrs, wds = by_hand(FACES[name], BATCHES_PER_EPOCH)
    assert values[0] == approx(lrs) and values[1] == approx(wds)
    assert len(set(lrs)) >= 3  # the schedule moves
    assert isinstance(trainer.lr_scheduler_configs[0].scheduler, torch.optim.lr_scheduler.LRScheduler)


@pytest.mark.parametrize("name", FACES)
def test_strategy_wse_steps_a_face_in_graph_every_optimizer_step(name):
    strategy = WSEStrategy()  # strict: a value written as a Python number would raise
    trainer, values = fit(FACES[name], strategy)
    lrs, wds = by_hand(FACES[name], 1)
    assert values[0] == approx(lrs) and values[1] == approx(wds)
    assert len(set(lrs)) >= 4  # the schedule moves
    report = trainer.strategy.device.report()
    assert (report.steps, report.violations) == (STEPS, {})
    assert trainer.lr_scheduler_configs[0].scheduler.last_epoch >= STEPS - 1


@pytest.mark.parametrize("name", FACES)
def test_accelerate_prepares_a_face_and_steps_it_with_the_optimizer(name):
    from accelerate import Accelerator

    model = torch.nn.Linear(3, 1)
    optimizer = optimizer_for(model.parameters())
    accelerator = Accelerator(cpu=True)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, FACES[name](optimizer))
    assert type(scheduler).__name__ == "AcceleratedScheduler"
    lrs, wds = [], []
    for _ in range(6):
        lrs.append(optimizer.param_groups[0]["lr"])
        wds.append(optimizer.param_groups[0]["weight_decay"])
        accelerator.backward(model(torch.ones(2, 3)).sum())
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    expected_lrs, expected_wds = by_hand(FACES[name], 1, steps=6)
    assert lrs == approx(expected_lrs) and wds == approx(expected_wds)
    assert scheduler.get_last_lr() == [optimizer.param_groups[0]["lr"]]
