"""A verified step run compiled or replayed from a CUDA graph gives the eager results."""
import pytest
import torch

from wse.device import ShapeChangeError

from .helpers import STEPS, Tiny, assert_same_training, batches


def eager_run(tiny: Tiny, data):
    return [tiny.train_step(x) for x in data]


def test_the_compiled_step_matches_eager_over_50_steps_and_is_compiled_once():
    data = batches(STEPS)
    reference = Tiny(scheduler=None)
    eager = eager_run(reference, data)

    tiny = Tiny(scheduler=None)
    device = tiny.device(compile=True, compile_backend="aot_eager")
    step = device.wrap(tiny.train_step)
    compiled = [step(x) for x in data]

    assert_same_training(reference, eager, tiny, compiled)
    report = device.report()
    assert report.steps == STEPS and report.steps_verified == 3 and report.violations == {}
    assert report.compile_seconds is not None and report.compiled_graphs >= 1
    assert report.recompilations == 0


@pytest.mark.filterwarnings("ignore:the compiled step was compiled again")
def test_the_compiled_step_reads_the_schedule_as_a_tensor():
    data = batches(STEPS)
    reference = Tiny(scheduler="tensor")
    eager = eager_run(reference, data)

    tiny = Tiny(scheduler="host")
    device = tiny.device(compile=True, compile_backend="aot_eager")
    assert tiny.scheduler.uses_tensor_values  # switched by the device
    step = device.wrap(tiny.train_step)
    compiled = [step(x) for x in data]

    assert_same_training(reference, eager, tiny, compiled)
    assert tiny.scheduler.last_epoch == STEPS
    lr = tiny.optimizer.param_groups[0]["lr"]
    assert lr.item() == pytest.approx(1e-2 + (1e-3 - 1e-2) * STEPS / 100, rel=1e-6)
    # At most one recompilation, when the scheduler's Python step counter first changes
    # and becomes a dynamic integer; the schedule's value itself never recompiles.
    assert device.report().recompilations <= 1


def test_step_closures_run_after_compiled_steps_too():
    tiny = Tiny(scheduler=None)
    device = tiny.device(compile=True, compile_backend="aot_eager", verify_steps=1)
    logged = []
    log = device.step_closure(lambda loss: logged.append(loss.item()))

    def train_step(x):
        loss = tiny.train_step(x)
        log(loss)
        return loss

    step = device.wrap(train_step)
    returned = [step(x).item() for x in batches(5)]
    assert logged == pytest.approx(returned)


@pytest.mark.slow
def test_the_inductor_compiled_step_matches_eager():
    data = batches(STEPS)
    reference = Tiny(scheduler=None)
    eager = eager_run(reference, data)
    tiny = Tiny(scheduler=None)
    device = tiny.device(compile=True)
    step = device.wrap(tiny.train_step)
    compiled = [step(x) for x in data]
    assert_same_training(reference, eager, tiny, compiled, rtol=1e-4, atol=1e-5)
    assert device.report().recompilations == 0


def cuda_tiny(scheduler="tensor"):
    tiny = Tiny(scheduler=None)
    tiny.model.cuda()
    tiny.optimizer = torch.optim.AdamW(tiny.model.parameters(), lr=1e-2, weight_decay=0.1, capturable=True)
    if scheduler == "tensor":
        from wse.optim.lr_scheduler import LinearLR

        tiny.scheduler = LinearLR(tiny.optimizer, 1e-2, 1e-3, total_iters=100).enable_tensor_values()
    return tiny


def cuda_step(tiny):
    def train_step(x):
        tiny.optimizer.zero_grad(set_to_none=True)
        loss = tiny.loss(x)
        loss.backward()
        tiny.optimizer.step()
        tiny.scheduler.step()
        return loss.detach()

    return train_step


@pytest.mark.gpu
def test_the_cuda_graph_replay_matches_eager_over_50_steps():
    data = [x.cuda() for x in batches(STEPS)]
    reference = cuda_tiny()
    eager = [cuda_step(reference)(x) for x in data]

    tiny = cuda_tiny()
    device = tiny.device(replay="cuda_graph")
    step = device.wrap(cuda_step(tiny))
    replayed = [step(x) for x in data]

    assert_same_training(reference, eager, tiny, replayed, rtol=1e-5, atol=1e-6)
    assert tiny.scheduler.last_epoch == reference.scheduler.last_epoch == STEPS
    assert device.report().violations == {}


@pytest.mark.gpu
@pytest.mark.parametrize("check, error, fragment", [("strict", ShapeChangeError, "drop_last"), ("off", ValueError, "fixed shapes")])
def test_the_cuda_graph_replay_refuses_another_shape(check, error, fragment):
    tiny = cuda_tiny()
    device = tiny.device(check=check, replay="cuda_graph", verify_steps=1, cuda_graph_warmup=1)
    step = device.wrap(cuda_step(tiny))
    for x in batches(4):
        step(x.cuda())
    with pytest.raises(error, match=fragment):
        step(torch.randn(3, 4, device="cuda"))


@pytest.mark.gpu
def test_a_smaller_batch_while_verifying_on_cuda_is_a_shape_change():
    tiny = cuda_tiny()
    device = tiny.device(replay="cuda_graph")
    step = device.wrap(cuda_step(tiny))
    step(torch.randn(8, 4, device="cuda"))
    with pytest.raises(ShapeChangeError):
        step(torch.randn(5, 4, device="cuda"))
