"""check="strict" | "warn" | "off", the verification window, the step API and bad arguments."""
import warnings

import pytest
import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode

from wse.device import Device, GraphChangeError, HostSyncError, StaticGraphWarning

from .helpers import Tiny, batches


def instruments(optimizer: torch.optim.Optimizer) -> dict:
    """What a checked step installs, observed from inside the step."""
    return {
        "dispatch mode": _get_current_dispatch_mode() is not None,
        "function modes": torch._C._len_torch_function_stack(),
        "pre hooks": len(optimizer._optimizer_step_pre_hooks),
        "post hooks": len(optimizer._optimizer_step_post_hooks),
        "state factory": optimizer.state.default_factory is not dict,
    }


NOTHING = {"dispatch mode": False, "function modes": 0, "pre hooks": 0, "post hooks": 0, "state factory": False}


def test_warn_mode_warns_once_per_kind_counts_every_violation_and_trains_on():
    tiny = Tiny(scheduler="torch")
    device = tiny.device(check="warn", verify_steps=5)
    before = [p.detach().clone() for p in tiny.model.parameters()]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step, x in enumerate(batches(6), start=1):
            with device.step(x):
                y = tiny.model(x)
                if step >= 3:
                    y = y * 1.5
                loss = y.pow(2).mean()
                loss.item()
                loss.backward()
                tiny.optimizer.step()
                tiny.optimizer.zero_grad()
                tiny.scheduler.step()
    ours = [w.message for w in caught if isinstance(w.message, StaticGraphWarning)]
    kinds = sorted(w.kind for w in ours)
    assert kinds == ["graph change", "host hyperparameter", "host sync"]
    assert all(w.location is not None and w.location.filename == __file__ for w in ours)
    assert {w.kind: w.error_type for w in ours}["host sync"] is HostSyncError
    report = device.report()
    assert report.violations["host sync"] == 6  # every checked step, warned once
    assert report.violations["graph change"] == 4  # steps 3 to 6
    assert report.violations["host hyperparameter"] == 6  # the scheduler writes a new float every step
    assert device.step_count == 6
    assert all(not torch.equal(a, b) for a, b in zip(before, tiny.model.parameters()))


def test_off_mode_installs_nothing_and_checks_nothing():
    tiny = Tiny()
    device = tiny.device(check="off")
    seen = []
    for step, x in enumerate(batches(4), start=1):
        with device.step(x):
            seen.append(instruments(tiny.optimizer))
            y = tiny.model(x) * (2 if step == 3 else 1)
            y.sum().item()
            y.pow(2).mean().backward()
            tiny.optimizer.step()
            tiny.optimizer.zero_grad()
    assert seen == [NOTHING] * 4
    report = device.report()
    assert (report.steps, report.steps_verified, report.graph_fingerprint, report.violations) == (4, 0, None, {})


def test_strict_mode_instruments_only_the_checked_steps():
    tiny = Tiny()
    device = tiny.device(verify_steps=2)
    seen = []
    for x in batches(5):
        checked = device.next_step_checked()
        with device.step(x):
            seen.append((checked, instruments(tiny.optimizer)))
            tiny.train_step(x)
    assert [checked for checked, _ in seen] == [True, True, True, False, False]
    for checked, installed in seen:
        if checked:
            assert installed["dispatch mode"] and installed["function modes"] == 1
            assert installed["pre hooks"] == 1 and installed["post hooks"] == 1
        else:
            assert installed == NOTHING
    assert instruments(tiny.optimizer) == NOTHING  # nothing left behind between steps
    assert device.report().steps_verified == 2


def step_with_change_at(device: Device, tiny: Tiny, change_at: int, steps: int) -> None:
    for step, x in enumerate(batches(steps), start=1):
        with device.step(x):
            y = tiny.model(x)
            if step == change_at:
                y = y * 2
            y.pow(2).mean().backward()
            tiny.optimizer.step()
            tiny.optimizer.zero_grad()


def test_a_change_after_the_verification_window_is_seen_only_with_verify_every():
    tiny = Tiny()
    step_with_change_at(tiny.device(verify_steps=3), tiny, change_at=10, steps=12)

    tiny = Tiny()
    with pytest.raises(GraphChangeError) as caught:
        step_with_change_at(tiny.device(verify_steps=3, verify_every=5), tiny, change_at=10, steps=12)
    assert caught.value.step == 10


def test_default_verification_window_is_three_steps():
    tiny = Tiny()
    device = tiny.device()
    for x in batches(10):
        with device.step(x):
            tiny.train_step(x)
    assert device.report().steps_verified == 3


def test_a_failed_capture_is_redone_on_the_next_step():
    tiny = Tiny()
    device = tiny.device()
    with pytest.raises(HostSyncError):
        with device.step(batches(1)[0]):
            tiny.model(batches(1)[0]).sum().item()
    assert device.graph is None and device.step_count == 0 and not device.in_step
    for x in batches(3):
        with device.step(x):
            tiny.train_step(x)
    assert device.graph is not None and device.step_count == 3


def test_begin_and_end_drive_a_step_across_hooks():
    tiny = Tiny()
    device = tiny.device()
    for x in batches(4):
        assert device.begin_step(x) is True
        loss = tiny.loss(x)
        loss.backward()
        tiny.optimizer.step()
        tiny.optimizer.zero_grad()
        tiny.scheduler.step()
        device.end_step()
    assert device.begin_step(x) is False  # past the verification window
    device.abort_step()
    with pytest.raises(RuntimeError, match="without a step in progress"):
        device.end_step()
    device.begin_step(x)
    with pytest.raises(RuntimeError, match="still in progress"):
        device.begin_step(x)


def test_wrappers_with_an_optimizer_attribute_are_unwrapped():
    tiny = Tiny()

    class Wrapper:
        def __init__(self, optimizer):
            self.optimizer = optimizer

        def step(self, closure=None):
            return self.optimizer.step(closure)

    device = Device(tiny.model, Wrapper(tiny.optimizer))
    assert device.optimizers == [tiny.optimizer]


@pytest.mark.parametrize(
    "options, error, fragment",
    [
        (dict(check="loud"), ValueError, "`check` must be one of ('strict', 'warn', 'off')"),
        (dict(verify_steps=-1), ValueError, "`verify_steps` must be an integer >= 0"),
        (dict(verify_every=0), ValueError, "`verify_every` must be None or an integer >= 1"),
        (dict(replay="graph"), ValueError, "`replay` must be one of ('eager', 'cuda_graph') (None means 'eager')"),
        (dict(compile="yes"), TypeError, "`compile` must be True or False"),
        (dict(allow_host_reads_in=["no_such_module_here"]), ValueError, "not installed: ['no_such_module_here']"),
    ],
)
def test_bad_options_are_rejected_with_the_accepted_values(options, error, fragment):
    tiny = Tiny()
    with pytest.raises(error) as caught:
        tiny.device(**options)
    assert fragment in str(caught.value)


def test_bad_objects_are_rejected():
    tiny = Tiny()
    with pytest.raises(TypeError, match="`model` must be a torch.nn.Module"):
        Device("model", tiny.optimizer)
    with pytest.raises(TypeError, match=r"optimizers\[1\] is a object, not a torch.optim.Optimizer"):
        Device(tiny.model, [tiny.optimizer, object()])
    with pytest.raises(TypeError, match="has no step"):
        Device(tiny.model, tiny.optimizer, [object()])
    with pytest.raises(TypeError, match="needs a callable"):
        tiny.device().wrap(3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_graph_replay_without_cuda_says_what_to_use_instead():
    with pytest.raises(RuntimeError, match="needs a CUDA device.*replay='eager'"):
        Tiny().device(replay="cuda_graph")


def run_with_logging(device: Device, tiny: Tiny, metrics) -> None:
    for x in batches(5):
        with device.step(x):
            loss = tiny.loss(x)
            metrics.log("loss", loss)
            loss.backward()
            tiny.optimizer.step()
            tiny.optimizer.zero_grad()
            tiny.scheduler.step()


def test_a_frameworks_logging_named_as_host_code_is_left_out_of_the_graph():
    from .framework_logging import MetricLog

    tiny = Tiny()
    with pytest.raises(GraphChangeError, match="step 2"):
        run_with_logging(tiny.device(), tiny, MetricLog())  # lazily allocated accumulators

    tiny = Tiny()
    metrics = MetricLog()
    device = tiny.device(host_code=["tests.device.framework_logging"])
    run_with_logging(device, tiny, metrics)
    assert device.report().violations == {}
    assert metrics.mean("loss") > 0
    operations = {str(event[0]) for event in device.graph.events}
    assert "aten.lift_fresh.default" not in operations and "aten.add_.Tensor" in operations
