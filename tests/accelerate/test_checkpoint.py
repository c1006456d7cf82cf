"""accelerator.save_state / load_state carry the schedulers and the global step; resuming is bit-identical."""
import json
import os

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import DataLoaderConfiguration

import wse.accelerate
from wse.accelerate import PrepareError

from .helpers import LR0, LR1, TOTAL, adamw_with_schedules, cosine, loader, value

ACCUMULATION, BATCHES_PER_EPOCH = 2, 12
UPDATES_PER_EPOCH = BATCHES_PER_EPOCH // ACCUMULATION


def fresh_accelerator() -> Accelerator:
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    return Accelerator(
        cpu=True,
        gradient_accumulation_steps=ACCUMULATION,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )


def dropout_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Dropout(0.2), torch.nn.Tanh(), torch.nn.Linear(16, 1))


def train(epochs=2, stop_after_updates=None, save_dir=None, resume_from=None):
    """The user's loop: resumes from a checkpoint at its global step, may stop and save."""
    accelerator = fresh_accelerator()
    net = dropout_model()
    optimizer, lr, wd = adamw_with_schedules(net)
    # The loader's own generator: a new iterator (the resumed epoch's) then draws its base seed
    # from it, not from the global RNG that dropout uses.
    data = loader(shuffle=True, generator=torch.Generator().manual_seed(1))
    net, optimizer, data, lr, wd = wse.accelerate.prepare(accelerator, net, optimizer, data, lr, wd)
    run = wse.accelerate.state(accelerator)
    if resume_from is not None:
        accelerator.load_state(resume_from)
    first_epoch, done_in_epoch = divmod(run.global_step, UPDATES_PER_EPOCH)
    for epoch in range(first_epoch, epochs):
        data.set_epoch(epoch)
        batches = data
        if epoch == first_epoch and done_in_epoch:
            batches = accelerator.skip_first_batches(data, done_in_epoch * ACCUMULATION)
        for x, y in batches:
            with accelerator.accumulate(net):
                accelerator.backward(torch.nn.functional.mse_loss(net(x), y))
                optimizer.step()
                lr.step()
                optimizer.zero_grad()
            if accelerator.sync_gradients and run.global_step == stop_after_updates:
                accelerator.save_state(save_dir)
                return accelerator, net, optimizer, lr
    return accelerator, net, optimizer, lr


def test_stop_and_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    _, reference_net, reference_optimizer, _ = train()
    checkpoint = str(tmp_path / "checkpoint")
    accelerator, _, _, _ = train(stop_after_updates=8, save_dir=checkpoint)
    sidecar = json.loads((tmp_path / "checkpoint" / "wse_accelerate.json").read_text())
    assert sidecar["global_step"] == 8
    assert sidecar["schedulers"] == ["CosineDecayLR", "CosineDecayWD"]
    assert sidecar["settings"]["check"] == "strict"
    saved = sorted(os.listdir(checkpoint))
    assert [name for name in saved if name.startswith("scheduler")] == ["scheduler.bin", "scheduler_1.bin"]
    assert not [name for name in saved if name.startswith("custom_checkpoint")]

    accelerator, net, optimizer, lr = train(resume_from=checkpoint)
    assert wse.accelerate.state(accelerator).global_step == 2 * UPDATES_PER_EPOCH
    assert lr.last_epoch == 2 * UPDATES_PER_EPOCH
    assert value(optimizer.param_groups[0]["lr"]) == pytest.approx(cosine(LR0, LR1, TOTAL, 12), rel=1e-12)
    for resumed, reference in zip(net.parameters(), reference_net.parameters()):
        assert torch.equal(resumed, reference)
    for p, q in zip(net.parameters(), reference_net.parameters()):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(optimizer.state[p][key], reference_optimizer.state[q][key])


def test_a_scheduler_registered_again_by_the_user_is_refused(tmp_path):
    accelerator = fresh_accelerator()
    net = dropout_model()
    optimizer, lr, _ = adamw_with_schedules(net)
    net, optimizer, lr = wse.accelerate.prepare(accelerator, net, optimizer, lr)
    accelerator.register_for_checkpointing(lr.scheduler)
    with pytest.raises(PrepareError, match="registered twice"):
        accelerator.save_state(str(tmp_path / "twice"))


def test_a_checkpoint_without_the_sidecar_is_refused_with_a_reason(tmp_path):
    accelerator = fresh_accelerator()
    net = dropout_model()
    optimizer, lr, _ = adamw_with_schedules(net)
    net, optimizer, lr = wse.accelerate.prepare(accelerator, net, optimizer, lr)
    accelerator.save_state(str(tmp_path / "plain"))
    os.remove(tmp_path / "plain" / "wse_accelerate.json")
    with pytest.raises(FileNotFoundError, match="has no wse_accelerate.json"):
        accelerator.load_state(str(tmp_path / "plain"))
