"""Construction errors, tags, state dicts and tensor values of the Cerebras schedulers."""
import pytest
import torch

from wse.optim import lr_scheduler as L
from wse.optim import weight_decay_scheduler as W


def sgd(groups=None):
    groups = groups or [{"params": [torch.nn.Parameter(torch.zeros(1))]}]
    return torch.optim.SGD(groups, lr=0.5, weight_decay=0.25)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda o: L.CosineDecayLR(o, 0.1, 0.0, total_iters=0), "`total_iters` must be > 0"),
        (lambda o: L.CosineDecayLR(o, 0.1, 0.0, total_iters=-5), "`total_iters` must be > 0"),
        (lambda o: L.LinearLR(o, float("nan"), 0.0, total_iters=10), "`initial_learning_rate` must be finite"),
        (lambda o: L.LinearLR(o, 0.1, float("inf"), total_iters=10), "`end_learning_rate` must be finite"),
        (lambda o: W.LinearWD(o, 0.1, float("inf"), total_iters=10), "`end_val` must be finite"),
        (lambda o: L.ExponentialLR(o, 0.1, total_iters=10, decay_rate=-0.5), "`decay_rate` must be >= 0"),
        (lambda o: L.MultiStepLR(o, 0.1, 0.5, milestones=[10, 5]), "strictly increasing"),
        (lambda o: L.PiecewiseConstantLR(o, [0.1, 0.01], milestones=[10, 20]), "one more value than milestones"),
        (lambda o: L.PiecewiseConstantLR(o, [0.1, 0.01, 0.001], milestones=[20, 10]), "strictly increasing"),
        (lambda o: L.InverseSquareRootDecayLR(o, 0.1, warmup_steps=0), "`warmup_steps` must be > 0"),
        (lambda o: L.CyclicLR(o, 0.1, 1.0, mode="triangle"), "`mode` must be one of"),
        (lambda o: L.OneCycleLR(o, 0.1, 1.0, total_steps=3, pct_start=0.3), "rising phase is empty"),
        (lambda o: L.StepLR(o, 0.1, step_size=0, gamma=0.5), "`step_size` must be > 0"),
        (lambda o: L.SequentialLR(o, [L.ConstantLR(o, 0.1), L.ConstantLR(o, 0.2)], milestones=[]), "one milestone fewer"),
        (lambda o: L.SequentialLR(o, [L.ConstantLR(o, 0.1), W.ConstantWD(o, 0.2)], milestones=[5]), "schedules 'weight_decay', not 'lr'"),
        (lambda o: L.ChainedLR([L.ConstantLR(o, 0.1), L.LinearLR(o, 0.0, 0.1, 10)]), "starts at 0"),
        (lambda o: L.CosineDecayLR("not an optimizer", 0.1, 0.0, 10), "needs a torch.optim.Optimizer"),
    ],
)
def test_bad_arguments_fail_at_construction_with_a_clear_message(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make(sgd())


def test_tags_target_only_matching_groups_and_unknown_tags_list_the_available_ones():
    optimizer = sgd(
        [
            {"params": [torch.nn.Parameter(torch.zeros(1))], "tags": "embedding"},
            {"params": [torch.nn.Parameter(torch.zeros(1))], "tags": ["decay", "dense"]},
            {"params": [torch.nn.Parameter(torch.zeros(1))]},
        ]
    )
    W.ConstantWD(optimizer, 0.0, param_group_tags=[None, "embedding"])
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.0, 0.25, 0.0]
    with pytest.raises(ValueError, match=r"Available tags: .*'dense'"):
        L.ConstantLR(optimizer, 0.1, param_group_tags="norm")


def test_construction_performs_the_first_step():
    optimizer = sgd()
    scheduler = L.LinearLR(optimizer, 0.0, 1.0, total_iters=10)
    assert optimizer.param_groups[0]["lr"] == 0.0 and scheduler.last_epoch == 0
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1) and scheduler.get_last_lr() == [pytest.approx(0.1)]


def run_steps(scheduler, optimizer, n, key="lr"):
    values = []
    for _ in range(n):
        optimizer.step()
        scheduler.step()
        values.append(float(optimizer.param_groups[0][key]))
    return values


@pytest.mark.parametrize("tensor_values", [False, True])
def test_state_dict_round_trip_resumes_the_same_values(tensor_values):
    def make(optimizer):
        warmup = L.LinearLR(optimizer, 0.0, 0.1, total_iters=5)
        decay = L.CosineDecayLR(optimizer, 0.1, 0.001, total_iters=20)
        scheduler = L.SequentialLR(optimizer, [warmup, decay], milestones=[5])
        return scheduler.enable_tensor_values() if tensor_values else scheduler

    first = sgd()
    scheduler = make(first)
    run_steps(scheduler, first, 12)
    saved_optimizer, saved_scheduler = first.state_dict(), scheduler.state_dict()
    expected = run_steps(scheduler, first, 10)

    second = sgd()
    resumed = make(second)
    second.load_state_dict(saved_optimizer)
    resumed.load_state_dict(saved_scheduler)
    assert resumed.last_epoch == 12
    assert run_steps(resumed, second, 10) == expected


def test_loads_the_cerebras_state_dict_layout():
    # The layout cerebras-pytorch 2.10.0 saves for CosineDecayLR after 7 steps.
    state = {
        "initial_learning_rate": 0.2,
        "end_learning_rate": 0.0,
        "param_group_tags": None,
        "_last_value": [torch.tensor(0.17)],
        "total_iters": 10,
        "last_epoch": torch.tensor(7),
        "_step_count": 8,
        "_get_called_within_step": False,
    }
    optimizer = sgd()
    scheduler = L.CosineDecayLR(optimizer, 0.1, 0.05, total_iters=100)
    scheduler.load_state_dict(state)
    assert scheduler.initial_learning_rate == 0.2 and scheduler.total_iters == 10
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.2 * 0.5 * (1 + torch.cos(torch.tensor(0.8 * torch.pi)).item()))
    saved = scheduler.state_dict()
    assert set(state) <= set(saved) and int(saved["last_epoch"]) == 8


def test_state_dict_without_last_epoch_is_refused():
    scheduler = L.ConstantLR(sgd(), 0.1)
    with pytest.raises(KeyError, match="no `last_epoch`"):
        scheduler.load_state_dict({"learning_rate": 0.2})


def test_changing_a_hyperparameter_changes_the_schedule():
    optimizer = sgd()
    scheduler = L.StepLR(optimizer, 0.1, step_size=1, gamma=0.5)
    scheduler.gamma = 0.1
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)


def test_tensor_values_are_updated_in_place():
    optimizer = sgd()
    scheduler = L.CosineDecayLR(optimizer, 0.1, 0.0, total_iters=10).enable_tensor_values()
    value = optimizer.param_groups[0]["lr"]
    assert isinstance(value, torch.Tensor) and value.dim() == 0
    for step in range(1, 12):
        scheduler.step()
        assert optimizer.param_groups[0]["lr"] is value
        expected = 0.05 * (1 + torch.cos(torch.tensor(min(step, 10) / 10 * torch.pi, dtype=torch.float64)).item())
        assert value.item() == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_scale_per_param_multiplies_each_group_by_its_adjustment():
    optimizer = sgd(
        [
            {"params": [torch.nn.Parameter(torch.zeros(1))], "adjust_learning_rate": 0.5},
            {"params": [torch.nn.Parameter(torch.zeros(1))]},
        ]
    )
    scheduler = L.ScalePerParamLR(optimizer, L.LinearLR(optimizer, 0.1, 0.0, total_iters=10))
    scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == [pytest.approx(0.045), pytest.approx(0.09)]


def test_tensor_values_step_inside_a_compiled_function_without_recompiling():
    torch._dynamo.reset()
    compilations = []

    def counting_backend(graph_module, example_inputs):
        compilations.append(graph_module)
        return graph_module.forward

    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([weight], lr=0.1, weight_decay=0.1)
    lr = L.CosineDecayLR(optimizer, 0.1, 0.0, total_iters=50).enable_tensor_values()
    wd = W.LinearWD(optimizer, 0.1, 0.0, total_iters=50).enable_tensor_values()

    @torch.compile(backend=counting_backend)
    def scheduled_update():
        lr.step()
        wd.step()
        return optimizer.param_groups[0]["lr"] * weight.sum() + optimizer.param_groups[0]["weight_decay"]

    scheduled_update()
    compiled_once = len(compilations)
    for step in range(2, 101):
        out = scheduled_update()
        expected_lr = 0.05 * (1 + torch.cos(torch.tensor(min(step, 50) / 50 * torch.pi, dtype=torch.float64)).item())
        assert out.item() == pytest.approx(3 * expected_lr + 0.1 * max(0.0, 1 - step / 50), rel=1e-5, abs=1e-7)
    assert len(compilations) == compiled_once, "the step counter must not specialise the graph"
    assert lr.last_epoch == 100 and wd.last_epoch == 100
