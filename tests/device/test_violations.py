"""Each break of the static-graph contract raises its own error, located at the user's line."""
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from wse.device import (
    Device,
    GraphChangeError,
    HostHyperparameterError,
    HostSyncError,
    LazyOptimizerStateError,
    ShapeChangeError,
    StaticGraphViolation,
)

from .helpers import Tiny, batches, line_of


def at(marker: str) -> int:
    """The line of this file tagged with the comment ``#@marker``."""
    return line_of(__file__, "#@" + marker)


def assert_located(error: StaticGraphViolation, marker: str) -> None:
    assert error.location is not None
    assert (error.location.filename, error.location.lineno) == (__file__, at(marker)), str(error)


# -- host synchronisation ---------------------------------------------------------------------


def read_item(y):
    return y.sum().item()  #@item


def read_truth(y):
    if y.sum() > 0:  #@truth
        return 1
    return 0


def read_tolist(y):
    return y.detach().tolist()  #@tolist


def read_numpy(y):
    return y.detach().numpy()  #@numpy


def read_cpu(y):
    return y.detach().cpu()  #@cpu


def read_float(y):
    return float(y.sum())  #@float


def nonzero_shape(y):
    return torch.nonzero(y > 0)  #@nonzero


def masked_shape(y):
    return y[y > 0]  #@mask


def printed(y):
    return f"{y.sum():.3f}"  #@format


HOST_READS = [
    (read_item, "item", ".item()"),
    (read_truth, "truth", "bool()"),
    (read_tolist, "tolist", ".tolist()"),
    (read_numpy, "numpy", ".numpy()"),
    (read_cpu, "cpu", ".cpu()"),
    (read_float, "float", "float()"),
    (nonzero_shape, "nonzero", "data-dependent shape"),
    (masked_shape, "mask", "boolean-mask indexing"),
    (printed, "format", "formatting a tensor"),
]


@pytest.mark.parametrize("read, marker, named", HOST_READS, ids=[case[1] for case in HOST_READS])
def test_a_host_read_inside_the_step_is_an_error_at_the_reading_line(read, marker, named):
    tiny = Tiny()
    device = tiny.device()
    with pytest.raises(HostSyncError) as caught:
        for x in batches(2):
            with device.step(x):
                y = tiny.model(x)
                read(y)
                y.pow(2).mean().backward()
                tiny.optimizer.step()
    assert_located(caught.value, marker)
    assert caught.value.step == 1
    assert named in str(caught.value)
    assert "after the step" in str(caught.value) or "fixed-shape" in str(caught.value)


def test_reading_values_after_the_step_and_in_a_step_closure_is_not_a_violation():
    tiny = Tiny()
    device = tiny.device()
    logged = []

    @device.step_closure
    def log(loss):
        logged.append(loss.item())

    after = []
    for x in batches(6):
        with device.step(x):
            loss = tiny.train_step(x)
            log(loss)
            assert logged == after  # deferred: nothing read inside the step
        after.append(loss.item())
    assert logged == after and len(after) == 6
    assert device.report().violations == {}


def test_torch_optim_reading_its_own_step_counter_is_allowed_but_the_same_read_by_user_code_is_not():
    tiny = Tiny(optimizer="adamw")
    device = tiny.device(allow_host_reads_in=())
    with pytest.raises(HostSyncError) as caught:
        for x in batches(2):
            with device.step(x):
                tiny.loss(x).backward()
                tiny.optimizer.step()  #@adamw-item
    assert_located(caught.value, "adamw-item")


class ReadingOptimizer(torch.optim.SGD):
    """A user's optimizer that reads a value on the host inside its own step()."""

    @torch.no_grad()
    def step(self, closure=None):
        scale = self.param_groups[0]["params"][0].grad.norm().item()  #@own-optimizer
        return super().step(closure) if scale >= 0 else None


def test_a_host_read_in_the_users_own_optimizer_subclass_is_not_excused_as_torch_optim():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer = ReadingOptimizer(model.parameters(), lr=0.1)
    device = Device(model, optimizer)
    with pytest.raises(HostSyncError) as caught:
        for x in batches(2):
            with device.step(x):
                model(x).sum().backward()
                optimizer.step()
    assert_located(caught.value, "own-optimizer")


# -- shape change -----------------------------------------------------------------------------


def test_a_smaller_last_batch_is_a_shape_change_that_suggests_drop_last():
    tiny = Tiny()
    device = tiny.device()
    data = TensorDataset(torch.randn(30, 4))
    with pytest.raises(ShapeChangeError) as caught:
        for (x,) in DataLoader(data, batch_size=4):
            with device.step(x):  #@batch
                tiny.train_step(x)
    # Step 8 is past the verification window: the inputs are still compared, cheaply.
    assert caught.value.step == 8 and not device.next_step_checked()
    assert_located(caught.value, "batch")
    message = str(caught.value)
    assert "the batch: f32[2, 4] now, f32[4, 4] captured" in message
    assert "drop_last=True" in message and "pad" in message

    tiny = Tiny()
    device = tiny.device()
    for (x,) in DataLoader(data, batch_size=4, drop_last=True):
        with device.step(x):
            tiny.train_step(x)
    assert device.step_count == 7


def test_a_dtype_change_of_one_input_names_that_input():
    tiny = Tiny()
    device = tiny.device()
    inputs = [(x, torch.ones(8, dtype=torch.int64)) for x in batches(3)]
    inputs[2] = (inputs[2][0], torch.ones(8, dtype=torch.int32))
    with pytest.raises(ShapeChangeError) as caught:
        for x, labels in inputs:
            with device.step(x, labels=labels):  #@dtype
                tiny.train_step(x)
    assert_located(caught.value, "dtype")
    assert "inputs[1]['labels']: i32[8] now, i64[8] captured" in str(caught.value)


# -- graph change -----------------------------------------------------------------------------


def test_control_flow_on_the_step_number_is_a_graph_change_that_shows_both_operations():
    tiny = Tiny()
    device = tiny.device()
    with pytest.raises(GraphChangeError) as caught:
        for step, x in enumerate(batches(4), start=1):
            with device.step(x):
                y = tiny.model(x)
                if step == 3:
                    y = y * 2  #@branch
                loss = y.pow(2).mean()  #@captured-op
                loss.backward()
                tiny.optimizer.step()
                tiny.optimizer.zero_grad()
                tiny.scheduler.step()
    assert_located(caught.value, "branch")
    assert caught.value.step == 3
    message = str(caught.value)
    assert "captured: aten.pow.Tensor_Scalar(f32[8, 1], 2) -> f32[8, 1]" in message
    assert f"{__file__}:{at('captured-op')}" in message
    assert "now:      aten.mul.Tensor(f32[8, 1], 2) -> f32[8, 1]" in message
    assert "torch.where" in message


def test_a_step_that_ends_early_is_a_graph_change_naming_the_missing_operation():
    tiny = Tiny()
    device = tiny.device()
    with pytest.raises(GraphChangeError) as caught:
        for step, x in enumerate(batches(3), start=1):
            with device.step(x):  #@short
                loss = tiny.train_step(x)
                if step == 1:
                    (loss * 2).detach()  #@only-first
    assert_located(caught.value, "short")
    assert caught.value.step == 2
    message = str(caught.value)
    assert "ended after" in message and f"{__file__}:{at('only-first')}" in message


def test_a_change_inside_an_optimizer_closure_is_caught_on_the_step_that_recaptures_lazy_state():
    # torch.optim.AdamW creates its state inside the first step(), after the closure ran:
    # step 2 re-captures that part of the graph, but still compares the closure's forward
    # and backward with step 1.
    tiny = Tiny(optimizer="adamw")
    device = tiny.device()
    with pytest.raises(GraphChangeError) as caught:
        for step, x in enumerate(batches(3), start=1):

            def closure():
                y = tiny.model(x)
                if step == 2:
                    y = y + 1  #@in-closure
                loss = y.pow(2).mean()
                loss.backward()
                return loss

            with device.step(x):
                tiny.optimizer.step(closure)
                tiny.optimizer.zero_grad()
    assert_located(caught.value, "in-closure")
    assert caught.value.step == 2


# -- lazy optimizer state ---------------------------------------------------------------------


class OutOfPlaceMomentum(torch.optim.Optimizer):
    """Momentum whose buffer is re-assigned every step instead of updated in place."""

    def __init__(self, params, lr=0.01):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                if "buf" not in state:
                    state["buf"] = torch.zeros_like(p)
                state["buf"] = state["buf"] * 0.9 + p.grad
                p.sub_(state["buf"], alpha=group["lr"])


class LateState(torch.optim.SGD):
    """SGD that allocates an extra buffer on its third step."""

    @torch.no_grad()
    def step(self, closure=None):
        super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["count"] = state.get("count", 0) + 1
                if state["count"] == 3:
                    state["extra"] = torch.zeros_like(p)  #@late-state


class GrowingHistory(torch.optim.SGD):
    """SGD that keeps every past gradient norm in a buffer that grows."""

    @torch.no_grad()
    def step(self, closure=None):
        super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                norm = p.grad.norm().reshape(1)
                state["norms"] = torch.cat([state["norms"], norm]) if "norms" in state else norm


@pytest.mark.parametrize(
    "optimizer_type, step, fragment, marker",
    [
        (OutOfPlaceMomentum, 2, "'buf' of parameter 0.weight was replaced by a new tensor", "lazy-step"),
        # Created late: the first operation step 1 did not run is the line that created it.
        (LateState, 3, "'extra' of parameter 0.weight was created (f32[8, 4])", "late-state"),
        (GrowingHistory, 2, "'norms' of parameter 0.weight changed from f32[1] to f32[2]", "lazy-step"),
    ],
    ids=["replaced", "created", "reshaped"],
)
def test_state_created_replaced_or_reshaped_after_step_one_is_lazy_state(optimizer_type, step, fragment, marker):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    optimizer = optimizer_type(model.parameters(), lr=0.01)
    device = Device(model, optimizer)
    with pytest.raises(LazyOptimizerStateError) as caught:
        for x in batches(4):
            with device.step(x):
                model(x).pow(2).mean().backward()
                optimizer.step()  #@lazy-step
                optimizer.zero_grad()
    assert_located(caught.value, marker)
    assert caught.value.step == step
    assert fragment in str(caught.value)
    assert f"{optimizer_type.__name__}.step() at {__file__}:{at('lazy-step')}" in str(caught.value)
    assert "preinitialize()" in str(caught.value)


def test_a_subclass_calling_super_step_is_one_optimizer_step():
    # torch hooks the step() of every optimizer class it instantiates, so once plain SGD
    # was instantiated, GrowingHistory.step -> SGD.step runs the step hooks twice.
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    test_state_created_replaced_or_reshaped_after_step_one_is_lazy_state(
        GrowingHistory, 2, "'norms' of parameter 0.weight changed from f32[1] to f32[2]", "lazy-step"
    )


# -- host-side hyperparameters ----------------------------------------------------------------


def test_a_torch_scheduler_writing_python_floats_is_a_host_hyperparameter_error():
    tiny = Tiny(scheduler="torch")
    device = tiny.device()
    with pytest.raises(HostHyperparameterError) as caught:
        for x in batches(3):
            with device.step(x):
                tiny.loss(x).backward()
                tiny.optimizer.step()  #@torch-scheduler
                tiny.optimizer.zero_grad()
                tiny.scheduler.step()
    assert_located(caught.value, "torch-scheduler")
    assert caught.value.step == 1
    message = str(caught.value)
    assert "param_groups[0]['lr']: 0.01 -> 0.009" in message
    assert "StepLR" in message and "enable_tensor_values()" in message


def test_a_learning_rate_set_by_hand_between_steps_is_found_when_the_optimizer_reads_it():
    tiny = Tiny(scheduler=None)
    device = tiny.device()
    with pytest.raises(HostHyperparameterError) as caught:
        for step, x in enumerate(batches(4), start=1):
            with device.step(x):
                tiny.loss(x).backward()
                tiny.optimizer.step()  #@manual-lr
                tiny.optimizer.zero_grad()
            if step == 2:
                for group in tiny.optimizer.param_groups:
                    group["lr"] = group["lr"] / 2
    assert_located(caught.value, "manual-lr")
    assert caught.value.step == 3
    assert "since the previous checked step" in str(caught.value)


def test_a_tensor_valued_schedule_updated_in_place_is_not_a_violation():
    tiny = Tiny(scheduler="tensor")
    device = tiny.device(verify_steps=8)
    lr = tiny.optimizer.param_groups[0]["lr"]
    for x in batches(8):
        with device.step(x):
            tiny.train_step(x)
    assert tiny.optimizer.param_groups[0]["lr"] is lr
    assert lr.item() == pytest.approx(1e-2 + (1e-3 - 1e-2) * 8 / 100)
    assert device.report().violations == {}


def test_the_five_kinds_are_distinct_violation_types():
    kinds = {error.kind for error in (LazyOptimizerStateError, HostSyncError, ShapeChangeError, GraphChangeError, HostHyperparameterError)}
    assert len(kinds) == 5
    for error in (LazyOptimizerStateError, HostSyncError, ShapeChangeError, GraphChangeError, HostHyperparameterError):
        assert issubclass(error, StaticGraphViolation)
