"""Every update of an Accelerate loop is a device step: violations are raised at the user's line."""
import contextlib

import pytest
import torch
from accelerate import Accelerator

import wse.accelerate
from wse.device import (
    GraphChangeError,
    HostHyperparameterError,
    HostSyncError,
    LazyOptimizerStateError,
    ShapeChangeError,
    StaticGraphViolation,
)

from .helpers import adamw_with_schedules, dataset, loader, model


def line_of(marker: str) -> int:
    """The line of this file tagged with the comment ``#@marker``."""
    with open(__file__) as handle:
        found = [number for number, line in enumerate(handle, 1) if line.rstrip().endswith("#@" + marker)]
    assert len(found) == 1, f"marker {marker!r} on lines {found}"
    return found[0]


def assert_located(error: StaticGraphViolation, marker: str) -> None:
    assert error.location is not None, str(error)
    assert (error.location.filename, error.location.lineno) == (__file__, line_of(marker)), str(error)


def prepared(accumulation=1, data=None, torch_scheduler=False, **options):
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=accumulation)
    net = model()
    optimizer, lr, wd = adamw_with_schedules(net)
    if torch_scheduler:
        lr = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 / (1 + step))
    prepared_objects = wse.accelerate.prepare(accelerator, net, optimizer, data or loader(), lr, wd, **options)
    return (accelerator,) + prepared_objects


def test_a_clean_loop_with_accumulation_is_verified_and_prints_two_lines(capsys):
    accelerator, net, optimizer, data, lr, wd = prepared(accumulation=2)
    losses = []
    for x, y in data:
        with accelerator.accumulate(net):
            loss = torch.nn.functional.mse_loss(net(x), y)
            accelerator.backward(loss)
            optimizer.step()
            lr.step()
            optimizer.zero_grad()
        if accelerator.sync_gradients:
            losses.append(loss.item())  # after the update: outside the step
    with torch.no_grad():  # evaluation opens no step
        net.eval()
        net(torch.randn(5, 6))
        net.train()
    accelerator.end_training()
    report = wse.accelerate.state(accelerator).device.report()
    assert (report.steps, report.steps_verified, report.total_violations) == (6, 3, 0)
    assert len(losses) == 6
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("wse.accelerate on 1 process, cpu: optimizer state allocated [AdamW: torch layout]")
    assert lines[1].startswith("wse.accelerate: 6 updates; wse device: 6 steps")  # then the device's summary
    assert "3 verified" in lines[1] and lines[1].endswith("no violations")


def test_a_host_read_between_micro_batches_is_a_host_sync_error():
    accelerator, net, optimizer, data, lr, wd = prepared(accumulation=2)
    with pytest.raises(HostSyncError) as caught:
        for x, y in data:
            with accelerator.accumulate(net):
                loss = torch.nn.functional.mse_loss(net(x), y)
                accelerator.backward(loss)
                print(f"{loss.item():.3f}")  #@item
                optimizer.step()
                optimizer.zero_grad()
    assert_located(caught.value, "item")
    assert caught.value.step == 1


def test_a_short_last_batch_is_a_shape_change():
    short = torch.utils.data.DataLoader(dataset(samples=20), batch_size=8)
    accelerator, net, optimizer, data, lr, wd = prepared(data=short, verify_steps=5)
    with pytest.raises(ShapeChangeError) as caught:
        for x, y in data:
            loss = torch.nn.functional.mse_loss(net(x), y)  #@shape
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
    assert_located(caught.value, "shape")
    assert caught.value.step == 3


def test_a_branch_on_the_step_number_is_a_graph_change():
    accelerator, net, optimizer, data, lr, wd = prepared()
    with pytest.raises(GraphChangeError) as caught:
        for step, (x, y) in enumerate(data):
            loss = torch.nn.functional.mse_loss(net(x), y)
            if step == 2:
                loss = loss + 0.01 * loss.abs()  #@graph
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
    assert_located(caught.value, "graph")


def test_a_torch_scheduler_writing_floats_is_a_host_hyperparameter_error():
    accelerator, net, optimizer, data, lr, wd = prepared(torch_scheduler=True)
    with pytest.raises(HostHyperparameterError) as caught:
        for x, y in data:
            accelerator.backward(torch.nn.functional.mse_loss(net(x), y))
            optimizer.step()  #@lr
            optimizer.zero_grad()
    assert_located(caught.value, "lr")
    assert "LambdaLR" in str(caught.value)


class LateStateSGD(torch.optim.Optimizer):
    """Plain SGD that creates a buffer only at its second step: state the first step did not have."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr})
        self.steps = 0

    def preinitialize(self):
        pass

    @torch.no_grad()
    def step(self, closure=None):
        self.steps += 1
        for group in self.param_groups:
            for p in group["params"]:
                if self.steps == 2:
                    self.state[p]["late"] = torch.zeros_like(p)  #@lazy
                p.add_(p.grad, alpha=-group["lr"])


def test_state_created_after_the_first_step_is_lazy_optimizer_state():
    accelerator = Accelerator(cpu=True)
    net = model()
    net, optimizer, data = wse.accelerate.prepare(accelerator, net, LateStateSGD(net.parameters()), loader())
    with pytest.raises(LazyOptimizerStateError) as caught:
        for x, y in data:
            accelerator.backward(torch.nn.functional.mse_loss(net(x), y))
            optimizer.step()
            optimizer.zero_grad()
    assert_located(caught.value, "lazy")
    assert caught.value.step == 2 and "late" in str(caught.value)


def test_check_warn_goes_on_and_counts_the_violation():
    accelerator, net, optimizer, data, lr, wd = prepared(check="warn")
    with pytest.warns(UserWarning, match="HostSyncError"):
        for x, y in data:
            loss = torch.nn.functional.mse_loss(net(x), y)
            if loss > 100:  # a host read inside the step
                loss = loss * 0
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
    report = wse.accelerate.state(accelerator).device.report()
    assert report.steps == 12 and report.violations == {"host sync": 4}


def test_an_epoch_ending_mid_cycle_is_refused_before_the_short_update_runs():
    accelerator, net, optimizer, data, lr, wd = prepared(accumulation=5)  # 12 batches: 5 + 5 + 2
    with pytest.raises(GraphChangeError, match="accumulates 2 micro-batch\\(es\\), the others 5") as caught:
        for x, y in data:
            with accelerator.accumulate(net):
                loss = torch.nn.functional.mse_loss(net(x), y)  #@cycle
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad()
    assert_located(caught.value, "cycle")
    assert caught.value.step == 3 and "sync_with_dataloader=False" in str(caught.value)


def test_a_user_may_mark_the_step_with_the_device_context_manager():
    accelerator, net, optimizer, data, lr, wd = prepared(accumulation=2)
    device = wse.accelerate.state(accelerator).device
    with contextlib.ExitStack() as update:
        for index, (x, y) in enumerate(data):
            if index % 2 == 0:
                update.enter_context(device.step(x))  # the user's own step: theirs to open and close
            with accelerator.accumulate(net):
                accelerator.backward(torch.nn.functional.mse_loss(net(x), y))
                optimizer.step()
                optimizer.zero_grad()
            if accelerator.sync_gradients:
                update.close()
    report = device.report()
    assert (report.steps, report.steps_verified, report.total_violations) == (6, 3, 0)
    assert wse.accelerate.state(accelerator).global_step == 6


def test_the_lines_speak_of_one_update_and_name_the_device_alike_for_any_number_of_processes(capsys):
    from accelerate.utils import DistributedType

    from wse.accelerate.run import where_it_runs

    accelerator, net, optimizer, data, lr, wd = prepared(data=loader(batch_size=96))
    for x, y in data:
        accelerator.backward(torch.nn.functional.mse_loss(net(x), y))
        optimizer.step()
        optimizer.zero_grad()
    accelerator.end_training()
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("wse.accelerate: 1 update; wse device: 1 step"), lines
    assert where_it_runs(1, DistributedType.NO, torch.device("cpu")) == "1 process, cpu"
    assert where_it_runs(2, DistributedType.MULTI_CPU, torch.device("cpu", 0)) == "2 processes (MULTI_CPU), cpu"
    assert where_it_runs(1, DistributedType.NO, torch.device("cuda", 0)) == "1 process, cuda"
