"""Every scheduler steps exactly once per real optimizer update, with its values in closed form."""
import pytest
import torch
from accelerate import Accelerator

import wse.accelerate
from wse.accelerate import PerUpdateScheduler, SchedulerStepError

from .helpers import LR0, LR1, TOTAL, WD0, WD1, adamw_with_schedules, cosine, loader, model, value


def run_loop(accelerator, scheduler_calls=1, epochs=1, **options):
    net = model()
    optimizer, lr, wd = adamw_with_schedules(net)
    net, optimizer, data, lr, wd = wse.accelerate.prepare(accelerator, net, optimizer, loader(), lr, wd, **options)
    seen = []  # (updates done, lr, weight decay) after each update: the values of the next one
    for _ in range(epochs):
        for x, y in data:
            with accelerator.accumulate(net):
                loss = torch.nn.functional.mse_loss(net(x), y)
                accelerator.backward(loss)
                optimizer.step()
                for _ in range(scheduler_calls):  # the user's own calls, on every micro-batch
                    lr.step()
                    wd.step()
                optimizer.zero_grad()
            if accelerator.sync_gradients:  # read after the update, outside the device step
                group = optimizer.param_groups[0]
                seen.append((wse.accelerate.state(accelerator).global_step, value(group["lr"]), value(group["weight_decay"])))
    return seen, lr, wd


@pytest.mark.parametrize("accumulation", [1, 3])
def test_lr_and_wd_follow_the_closed_form_at_every_update(accumulation):
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=accumulation)
    seen, lr, wd = run_loop(accelerator, scheduler_calls=2)
    assert len(seen) == 12 // accumulation
    for update, (done, lr_next, wd_next) in enumerate(seen, 1):
        assert done == update
        assert lr_next == pytest.approx(cosine(LR0, LR1, TOTAL, update), rel=1e-12, abs=0)
        assert wd_next == pytest.approx(cosine(WD0, WD1, TOTAL, update), rel=1e-12, abs=0)
    assert lr.last_epoch == wd.last_epoch == len(seen)
    assert wse.accelerate.state(accelerator).global_step == len(seen)


def test_without_calls_of_the_user_the_schedule_advances_the_same():
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=2)
    seen, lr, _ = run_loop(accelerator, scheduler_calls=0)
    assert [lr_next for _, lr_next, _ in seen] == pytest.approx([cosine(LR0, LR1, TOTAL, k) for k in range(1, 7)], rel=1e-12)
    assert lr.last_epoch == 6


def test_a_torch_scheduler_is_not_wrapped_in_accelerated_scheduler():
    accelerator = Accelerator(cpu=True)
    net = model()
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5**step)
    net, optimizer, data, wrapped = wse.accelerate.prepare(accelerator, net, optimizer, loader(), scheduler, check="off")
    assert isinstance(wrapped, PerUpdateScheduler) and wrapped.scheduler is scheduler
    assert accelerator._schedulers == [wrapped]
    for step, (x, y) in enumerate(data):
        assert optimizer.param_groups[0]["lr"] == 0.5**step
        accelerator.backward(torch.nn.functional.mse_loss(net(x), y))
        optimizer.step()
        wrapped.step()
        optimizer.zero_grad()
    assert wrapped.get_last_lr() == [0.5**12]


def test_an_update_the_grad_scaler_skips_steps_no_scheduler():
    accelerator = Accelerator(cpu=True)
    # A CPU Accelerator has no grad scaler (fp16 autocast is a GPU feature); this is torch's own,
    # so Accelerate's wrapper sees a real skipped step (step_was_skipped).
    accelerator.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    net = model()
    optimizer, lr, wd = adamw_with_schedules(net)
    net, optimizer, data, lr, wd = wse.accelerate.prepare(accelerator, net, optimizer, loader(), lr, wd, check="off")
    skipped = []
    for batch, (x, y) in enumerate(data):
        loss = torch.nn.functional.mse_loss(net(x), y)
        if batch == 4:
            loss = loss * float("inf")
        accelerator.backward(loss)
        optimizer.step()
        lr.step()
        optimizer.zero_grad()
        skipped.append(optimizer.step_was_skipped)
    assert skipped == [batch == 4 for batch in range(12)]
    assert lr.last_epoch == wd.last_epoch == 11
    assert wse.accelerate.state(accelerator).global_step == 11
    assert value(optimizer.param_groups[0]["lr"]) == pytest.approx(cosine(LR0, LR1, TOTAL, 11), rel=1e-12)


def test_step_with_an_epoch_or_a_metric_is_refused():
    accelerator = Accelerator(cpu=True)
    net = model()
    optimizer, lr, _ = adamw_with_schedules(net)
    net, optimizer, lr = wse.accelerate.prepare(accelerator, net, optimizer, lr)
    with pytest.raises(SchedulerStepError, match="takes no epoch or metric"):
        lr.step(3)
    lr.step()  # accepted, and does not step
    assert lr.last_epoch == 0


def test_stepping_the_scheduler_passed_to_prepare_is_refused_at_the_next_update():
    accelerator = Accelerator(cpu=True)
    net = model()
    optimizer, lr, wd = adamw_with_schedules(net)
    net, optimizer, data, prepared_lr, wd = wse.accelerate.prepare(accelerator, net, optimizer, loader(), lr, wd)
    with pytest.raises(SchedulerStepError, match="CosineDecayLR was stepped 1 time\\(s\\) outside wse"):
        for x, y in data:
            accelerator.backward(torch.nn.functional.mse_loss(net(x), y))
            optimizer.step()
            lr.step()  # the object passed in, not the one prepare returned: a second step
            optimizer.zero_grad()
    assert lr.last_epoch == 2  # refused at the second update, before wse stepped it again
