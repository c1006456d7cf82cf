"""wse.accelerate.prepare: the objects it returns, optimizer state after placement, bad input."""

import pytest
import torch
from accelerate import Accelerator
from accelerate.tracking import GeneralTracker

import wse.accelerate
import wse.optim
from wse.accelerate import LaunchError, LazyOptimizerStateError, PrepareError, SchedulerStepError

from .helpers import LR0, LR1, TOTAL, WD0, WD1, adamw_with_schedules, cosine, loader, model

TORCH_OPTIMIZERS = {
    "Adam": lambda p: torch.optim.Adam(p, lr=1e-2, amsgrad=True),
    "AdamW": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    "SGD": lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9, nesterov=True),
    "RMSprop": lambda p: torch.optim.RMSprop(p, lr=1e-3, momentum=0.5, centered=True),
    "Adagrad": lambda p: torch.optim.Adagrad(p, lr=1e-2),
    "Adamax": lambda p: torch.optim.Adamax(p, lr=1e-2),
    "NAdam": lambda p: torch.optim.NAdam(p, lr=1e-2),
    "RAdam": lambda p: torch.optim.RAdam(p, lr=1e-2),
    "ASGD": lambda p: torch.optim.ASGD(p, lr=1e-2),
    "Rprop": lambda p: torch.optim.Rprop(p, lr=1e-2),
    "Adadelta": lambda p: torch.optim.Adadelta(p),
}


def plain_torch_run(make_optimizer, steps=4):
    """The golden trajectory: torch alone, its state created lazily by its own first step."""
    net = model()
    optimizer = make_optimizer(net.parameters())
    for step, (x, y) in enumerate(loader()):
        if step == steps:
            break
        torch.nn.functional.mse_loss(net(x), y).backward()
        optimizer.step()
        optimizer.zero_grad()
    return net, optimizer


@pytest.mark.parametrize("name", sorted(TORCH_OPTIMIZERS))
def test_torch_optimizers_get_torch_state_before_step_one_and_keep_torch_numbers(name):
    accelerator = Accelerator(cpu=True)
    net = model()
    net, optimizer, data = wse.accelerate.prepare(accelerator, net, TORCH_OPTIMIZERS[name](net.parameters()), loader())
    golden_net, golden = plain_torch_run(TORCH_OPTIMIZERS[name])
    before = {id(p): {k: v for k, v in optimizer.state[p].items()} for p in net.parameters()}
    for p, q in zip(net.parameters(), golden_net.parameters()):  # the layout torch's own step created
        assert sorted(optimizer.state[p]) == sorted(golden.state[q])
        for key, tensor in golden.state[q].items():
            assert (optimizer.state[p][key].dtype, optimizer.state[p][key].shape) == (tensor.dtype, tensor.shape)
    for step, (x, y) in enumerate(data):
        if step == 4:
            break
        accelerator.backward(torch.nn.functional.mse_loss(net(x), y))
        optimizer.step()
        optimizer.zero_grad()
    for p, q in zip(net.parameters(), golden_net.parameters()):
        assert torch.equal(p, q)
        for key, tensor in before[id(p)].items():  # updated in place, never re-created
            assert optimizer.state[p][key] is tensor


def test_a_wse_optimizer_allocates_its_own_state_after_placement():
    accelerator = Accelerator(cpu=True)
    net = model()
    net, optimizer = wse.accelerate.prepare(accelerator, net, wse.optim.AdamW(net.parameters(), lr=1e-3))
    assert all(optimizer.state[p] for p in net.parameters())
    assert "AdamW: preinitialize()" in wse.accelerate.state(accelerator).describe()


def test_sgd_with_dampening_and_lazy_optimizers_are_refused_or_warned():
    net = model()
    with pytest.raises(LazyOptimizerStateError, match="dampening=0.5"):
        wse.accelerate.prepare(Accelerator(cpu=True), net, torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, dampening=0.5))

    class Lazy(torch.optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, {"lr": 0.1})

        def step(self, closure=None):
            pass

    with pytest.raises(LazyOptimizerStateError, match="give Lazy a `preinitialize\\(\\)` method"):
        wse.accelerate.prepare(Accelerator(cpu=True), net, Lazy(net.parameters()))
    with pytest.warns(wse.accelerate.WSEAccelerateWarning, match="strict='warn'"):
        wse.accelerate.prepare(Accelerator(cpu=True), net, Lazy(net.parameters()), strict="warn")


def test_prepare_returns_the_objects_in_order_like_accelerator_prepare():
    accelerator = Accelerator(cpu=True)
    net = model()
    optimizer, lr, wd = adamw_with_schedules(net)
    data = loader()
    prepared = wse.accelerate.prepare(accelerator, lr, data, net, wd, optimizer)
    assert [type(obj).__name__ for obj in prepared] == [
        "PerUpdateScheduler", "DataLoaderShard", "Sequential", "PerUpdateScheduler", "AcceleratedOptimizer"
    ]
    assert prepared[0].scheduler is lr and prepared[3].scheduler is wd
    assert accelerator._schedulers == [prepared[0], prepared[3]]


def test_bad_input_is_refused_with_what_to_change():
    net = model()
    optimizer, lr, _ = adamw_with_schedules(net)
    with pytest.raises(PrepareError, match="argument 2 is a builtins.dict, which cannot be placed"):
        wse.accelerate.prepare(Accelerator(cpu=True), net, optimizer, {"lr": 1})
    with pytest.raises(SchedulerStepError, match="not among the optimizers passed"):
        wse.accelerate.prepare(Accelerator(cpu=True), net, torch.optim.SGD(net.parameters(), lr=0.1), lr)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    with pytest.raises(SchedulerStepError, match="ReduceLROnPlateau.*closed-form"):
        wse.accelerate.prepare(Accelerator(cpu=True), net, optimizer, plateau)
    accelerator = Accelerator(cpu=True)
    optimizer, lr, _ = adamw_with_schedules(net)
    net2, optimizer, wrapped = accelerator.prepare(net, optimizer, lr)
    with pytest.raises(SchedulerStepError, match="AcceleratedScheduler steps its scheduler num_processes times"):
        wse.accelerate.prepare(accelerator, net2, optimizer, wrapped)
    with pytest.raises(ValueError, match="`strict` must be one of"):
        wse.accelerate.prepare(Accelerator(cpu=True), net, optimizer, strict="yes")
    with pytest.raises(ValueError, match="`check` must be one of"):
        wse.accelerate.prepare(Accelerator(cpu=True), net, torch.optim.AdamW(net.parameters()), check="sometimes")


def test_prepare_twice_on_one_accelerator_is_refused():
    accelerator = Accelerator(cpu=True)
    net = model()
    wse.accelerate.prepare(accelerator, net, torch.optim.AdamW(net.parameters()))
    with pytest.raises(PrepareError, match="already called on this Accelerator"):
        wse.accelerate.prepare(accelerator, net, torch.optim.AdamW(net.parameters()))


def test_launched_processes_without_a_distributed_accelerator_are_refused(monkeypatch):
    # What `torchrun --nproc_per_node 2 train.py` gives each process on a machine without GPUs:
    # the launcher's variables, and an Accelerator that is not distributed (its state is made
    # first here, as a second rank to rendezvous with does not exist in a test).
    accelerator = Accelerator(cpu=True)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    net = model()
    with pytest.raises(LaunchError, match="2 processes were launched.*ACCELERATE_USE_CPU=1"):
        wse.accelerate.prepare(accelerator, net, torch.optim.AdamW(net.parameters()))


class ListTracker(GeneralTracker):
    """An Accelerate tracker that keeps what it is given."""

    name = "list"
    requires_logging_directory = False

    def __init__(self):
        super().__init__()
        self.logged = []

    @property
    def tracker(self):
        return self.logged

    def store_init_configuration(self, values):
        pass

    def log(self, values, step=None, **kwargs):
        self.logged.append((step, dict(values)))


def test_hyperparameters_are_logged_per_update_under_lightning_series_names():
    tracker = ListTracker()
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=2, log_with=[tracker])
    accelerator.init_trackers("test")
    net = model()
    optimizer, lr, wd = adamw_with_schedules(net)
    net, optimizer, data, lr, wd = wse.accelerate.prepare(accelerator, net, optimizer, loader(), lr, wd, log_hyperparameters=True)
    for x, y in data:
        with accelerator.accumulate(net):
            accelerator.backward(torch.nn.functional.mse_loss(net(x), y))
            optimizer.step()
            optimizer.zero_grad()
    assert [step for step, _ in tracker.logged] == list(range(6))
    for step, values in tracker.logged:  # the values the update used
        assert sorted(values) == ["lr-AdamW", "lr-AdamW-momentum", "lr-AdamW-weight_decay"]
        assert values["lr-AdamW"] == pytest.approx(cosine(LR0, LR1, TOTAL, step), rel=1e-12)
        assert values["lr-AdamW-weight_decay"] == pytest.approx(cosine(WD0, WD1, TOTAL, step), rel=1e-12)
        assert values["lr-AdamW-momentum"] == 0.9


@pytest.mark.slow
def test_importing_the_integration_does_not_import_lightning():
    import subprocess
    import sys

    code = "import sys, wse.accelerate; print('lightning' in sys.modules or 'lightning.pytorch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
