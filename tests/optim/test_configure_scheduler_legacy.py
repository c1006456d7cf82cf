"""configure_lr_scheduler and configure_scheduler_params: the older learning_rate format and Model Zoo names."""
import math

import pytest
import torch

from wse.optim import (
    SchedulerConfigError,
    configure_lr_scheduler,
    configure_scheduler_params,
    lr_scheduler,
)


def sgd(groups=1):
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(groups)]
    return torch.optim.SGD(params, lr=0.5)


def lrs(optimizer, scheduler, steps, group=0):
    out = []
    for _ in range(steps):
        out.append(float(optimizer.param_groups[group]["lr"]))
        scheduler.step()
    return out


def error_of(call, *args):
    with pytest.raises(SchedulerConfigError) as caught:
        call(*args)
    return str(caught.value)


# -- configure_scheduler_params ---------------------------------------------------------------


@pytest.mark.parametrize(
    "entry, cls, kwargs",
    [
        (
            {"scheduler": "Constant", "val": 0.1, "decay_steps": 100},
            lr_scheduler.ConstantLR,
            {"learning_rate": 0.1, "total_iters": 100},
        ),
        (
            {"scheduler": "Exponential", "learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5, "staircase": True},
            lr_scheduler.ExponentialLR,
            {"initial_learning_rate": 0.1, "total_iters": 10, "decay_rate": 0.5, "staircase": True},
        ),
        (
            {"scheduler": "PiecewiseConstant", "learning_rates": [0.1, 0.01, 0.001], "milestones": [100, 200]},
            lr_scheduler.PiecewiseConstantLR,
            {"learning_rates": [0.1, 0.01, 0.001], "milestones": [100, 200]},
        ),
        (
            {"scheduler": "Polynomial", "learning_rate": 0.1, "end_learning_rate": 0.0, "decay_steps": 100, "power": 2.0},
            lr_scheduler.PolynomialLR,
            {"initial_learning_rate": 0.1, "end_learning_rate": 0.0, "total_iters": 100, "power": 2.0},
        ),
        (
            {"scheduler": "linear", "initial_learning_rate": 0.0, "end_learning_rate": 0.1, "steps": 10},
            lr_scheduler.LinearLR,
            {"initial_learning_rate": 0.0, "end_learning_rate": 0.1, "total_iters": 10},
        ),
        (
            {"scheduler": "CosineDecayLR", "initial_learning_rate": 0.1, "end_learning_rate": 0.0, "total_iters": 5},
            lr_scheduler.CosineDecayLR,
            {"initial_learning_rate": 0.1, "end_learning_rate": 0.0, "total_iters": 5},
        ),
        (
            {"scheduler": "cosine_annealing_warm_restarts", "learning_rate": 0.1, "T_0": 5},
            lr_scheduler.CosineAnnealingWarmRestarts,
            {"initial_learning_rate": 0.1, "T_0": 5},
        ),
        (
            {"scheduler": "Constant", "learning_rate": 0.2, "main_scheduler": "SequentialLR"},
            lr_scheduler.ConstantLR,
            {"learning_rate": 0.2},
        ),
    ],
)
def test_names_and_argument_names_map_onto_current_classes(entry, cls, kwargs):
    assert configure_scheduler_params(entry) == (cls, kwargs)


def test_scheduler_params_from_yaml_text():
    cls, kwargs = configure_scheduler_params("{scheduler: Exponential, learning_rate: 1e-3, decay_steps: 10, decay_rate: 0.5}")
    assert cls is lr_scheduler.ExponentialLR
    assert kwargs == {"initial_learning_rate": 1e-3, "total_iters": 10, "decay_rate": 0.5}


def test_unknown_scheduler_name_suggests_close_names():
    message = error_of(configure_scheduler_params, {"scheduler": "Exponentail", "learning_rate": 0.1})
    assert message.startswith("learning_rate: unknown scheduler 'Exponentail' (did you mean 'Exponential'")


def test_weight_decay_class_in_the_learning_rate_format_is_explained():
    message = error_of(configure_scheduler_params, {"scheduler": "CosineDecayWD"})
    assert "not a learning-rate scheduler" in message


def test_misspelt_old_argument_name_gets_a_suggestion_and_the_missing_one_its_aliases():
    message = error_of(
        configure_scheduler_params,
        {"scheduler": "Exponential", "learning_rate": 0.1, "decay_stesp": 10, "decay_rate": 0.5},
    )
    assert message.startswith("learning_rate.ExponentialLR: unexpected argument 'decay_stesp' (did you mean 'decay_steps'")
    assert "missing required argument 'total_iters' (also accepted as 'decay_steps' or 'steps')" in message


def test_an_argument_given_under_two_names_is_an_error():
    message = error_of(
        configure_scheduler_params,
        {"scheduler": "Linear", "learning_rate": 0.1, "initial_learning_rate": 0.2, "end_learning_rate": 0, "steps": 3},
    )
    assert "'initial_learning_rate' and 'learning_rate' both give `initial_learning_rate`" in message


def test_composite_scheduler_cannot_be_a_single_entry():
    assert "give a list of entries" in error_of(configure_scheduler_params, {"scheduler": "Sequential"})


def test_entry_without_scheduler_key_points_to_the_other_format():
    message = error_of(configure_scheduler_params, {"LinearLR": {"initial_learning_rate": 0.1}})
    assert "no `scheduler` key" in message and "configure_scheduler" in message


# -- configure_lr_scheduler: the three forms ---------------------------------------------------


def test_scalar_is_a_constant_learning_rate():
    for value in (0.01, 1, "1e-2"):
        optimizer = sgd()
        scheduler = configure_lr_scheduler(optimizer, value)
        assert type(scheduler) is lr_scheduler.ConstantLR
        assert lrs(optimizer, scheduler, 3) == [float(value)] * 3


def test_mapping_is_one_scheduler_polynomial_of_any_power():
    optimizer = sgd()
    entry = {"scheduler": "Polynomial", "learning_rate": 0.1, "end_learning_rate": 0.01, "decay_steps": 10, "power": 3}
    scheduler = configure_lr_scheduler(optimizer, entry)
    expected = [0.01 + 0.09 * (1 - min(t, 10) / 10) ** 3 for t in range(12)]
    assert lrs(optimizer, scheduler, 12) == pytest.approx(expected, rel=1e-12)


def test_list_is_a_sequence_with_cumulative_milestones():
    optimizer = sgd()
    entries = [
        {"scheduler": "Linear", "initial_learning_rate": 0.0, "end_learning_rate": 0.1, "steps": 10},
        {"scheduler": "Step", "initial_learning_rate": 0.1, "step_size": 5, "gamma": 0.5, "total_iters": 20},
        {"scheduler": "Constant", "val": 0.001},
    ]
    scheduler = configure_lr_scheduler(optimizer, entries)
    assert type(scheduler) is lr_scheduler.SequentialLR
    assert scheduler._milestones == [10, 30]
    got = lrs(optimizer, scheduler, 35)
    assert got[:10] == pytest.approx([0.01 * t for t in range(10)])
    assert got[10:30] == pytest.approx([0.1 * 0.5 ** ((t - 10) // 5) for t in range(10, 30)])
    assert got[30:] == [0.001] * 5


def test_single_entry_list_is_that_scheduler():
    optimizer = sgd()
    scheduler = configure_lr_scheduler(optimizer, [{"scheduler": "Constant", "val": 0.3, "decay_steps": 10}])
    assert type(scheduler) is lr_scheduler.ConstantLR


def test_main_scheduler_chained_anywhere_makes_a_chain():
    optimizer = sgd()
    entries = [
        {"scheduler": "Exponential", "learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5},
        {"scheduler": "Step", "initial_learning_rate": 1.0, "step_size": 4, "gamma": 0.1, "main_scheduler": "ChainedLR"},
    ]
    scheduler = configure_lr_scheduler(optimizer, entries)
    assert type(scheduler) is lr_scheduler.ChainedLR
    expected = [0.1 * 0.5 ** (t / 10) * 0.1 ** (t // 4) for t in range(10)]
    assert lrs(optimizer, scheduler, 10) == pytest.approx(expected, rel=1e-12)


def test_yaml_list_from_a_model_zoo_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(
        "- scheduler: Linear\n  initial_learning_rate: 0.0\n  end_learning_rate: 2e-4\n  steps: 4\n"
        "- scheduler: CosineDecay\n  initial_learning_rate: 2e-4\n  end_learning_rate: 0.0\n  decay_steps: 8\n"
    )
    optimizer = sgd()
    got = lrs(optimizer, configure_lr_scheduler(optimizer, str(path)), 14)
    expected = [5e-5 * t for t in range(4)] + [1e-4 * (1 + math.cos(math.pi * min(t, 8) / 8)) for t in range(10)]
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-18)


# -- configure_lr_scheduler: errors ------------------------------------------------------------


def test_non_last_entry_without_length_names_its_index():
    entries = [
        {"scheduler": "Step", "initial_learning_rate": 0.1, "step_size": 5, "gamma": 0.5},
        {"scheduler": "Constant", "val": 0.001},
    ]
    message = error_of(configure_lr_scheduler, sgd(), entries)
    assert message.startswith("learning_rate[0].StepLR: needs `total_iters`")


def test_entry_error_names_its_index_and_class():
    entries = [
        {"scheduler": "Linear", "initial_learning_rate": 0.0, "end_learning_rate": 0.1, "steps": 10},
        {"scheduler": "CosineDecay", "initial_learning_rate": 0.1, "end_learning_rate": 0.0, "totl_iters": 10},
    ]
    message = error_of(configure_lr_scheduler, sgd(), entries)
    assert message.startswith(
        "learning_rate[1].CosineDecayLR: unexpected argument 'totl_iters' (did you mean 'total_iters'?)"
    )


@pytest.mark.parametrize(
    "learning_rate, expected",
    [
        (float("nan"), "learning_rate.ConstantLR: `learning_rate` must be finite, got nan."),
        (
            {"scheduler": "Linear", "learning_rate": 0.1, "end_learning_rate": 0.0, "decay_steps": 0},
            "learning_rate.LinearLR: `total_iters` must be > 0 steps, got 0.",
        ),
        (
            {"scheduler": "PiecewiseConstant", "learning_rates": [0.1, 0.01], "milestones": [20, 10, 30]},
            "learning_rate.PiecewiseConstantLR: expected exactly one more value than milestones, "
            "got 2 values and 3 milestones.",
        ),
        (
            {"scheduler": "PiecewiseConstant", "learning_rates": [0.1, 0.01, 0.001], "milestones": [20, 10]},
            "learning_rate.PiecewiseConstantLR: `milestones` must be strictly increasing, got [20, 10] "
            "(10 does not come after 20).",
        ),
        (
            [
                {"scheduler": "Constant", "val": 0.1, "decay_steps": -5},
                {"scheduler": "Constant", "val": 0.2},
            ],
            "learning_rate[0].ConstantLR: `total_iters` must be > 0 steps, got -5.",
        ),
        (
            [
                {"scheduler": "Step", "initial_learning_rate": 0.1, "step_size": 5, "gamma": 0.5, "steps": 2.5},
                {"scheduler": "Constant", "val": 0.2},
            ],
            "learning_rate[0].StepLR: `total_iters` must be a whole number of steps, got 2.5.",
        ),
    ],
)
def test_value_errors_surface_with_their_place(learning_rate, expected):
    assert error_of(configure_lr_scheduler, sgd(), learning_rate) == expected


@pytest.mark.parametrize(
    "learning_rate, expected",
    [
        ([], "the list of schedulers is empty"),
        ("Linear", "expected a number, a mapping with a `scheduler` key"),
        (True, "expected a number"),
        ([0.1, 0.2], "learning_rate[0]: expected a mapping with a `scheduler` key"),
        ([{"scheduler": "Constant", "val": 1, "main_scheduler": "Parallel"}], "must be 'ChainedLR' or 'SequentialLR'"),
        (
            [
                {"scheduler": "Constant", "val": 1, "total_iters": 3, "main_scheduler": "SequentialLR"},
                {"scheduler": "Constant", "val": 1, "main_scheduler": "ChainedLR"},
            ],
            "entries disagree on `main_scheduler`",
        ),
        ([{"scheduler": "Constant", "val": 1, "steps": 3, "decay_steps": 3}, {"scheduler": "Constant", "val": 1}], "keep one"),
    ],
)
def test_malformed_learning_rate_configs_are_explained(learning_rate, expected):
    assert expected in error_of(configure_lr_scheduler, sgd(), learning_rate)


def test_chained_entries_do_not_swallow_total_iters():
    entries = [
        {"scheduler": "Constant", "val": 0.1, "main_scheduler": "ChainedLR"},
        {"scheduler": "Step", "initial_learning_rate": 1.0, "step_size": 2, "gamma": 0.5, "total_iters": 10},
    ]
    assert "unexpected argument 'total_iters'" in error_of(configure_lr_scheduler, sgd(), entries)


# -- adjust_learning_rate ----------------------------------------------------------------------


class TwoLayers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(4, 2)
        self.decoder = torch.nn.Linear(2, 2)


def test_adjust_learning_rate_from_parameter_names():
    model = TwoLayers()
    optimizer = torch.optim.SGD(
        [
            {"params": list(model.embedding.named_parameters(prefix="embedding"))},
            {"params": list(model.decoder.named_parameters(prefix="decoder"))},
        ],
        lr=0.5,
    )
    entry = {"scheduler": "Linear", "learning_rate": 0.2, "end_learning_rate": 0.0, "steps": 4}
    scheduler = configure_lr_scheduler(optimizer, entry, adjust_learning_rate={"decoder": 0.1})
    assert type(scheduler) is lr_scheduler.ScalePerParamLR
    assert [g["adjust_learning_rate"] for g in optimizer.param_groups] == [1.0, 0.1]
    assert lrs(optimizer, scheduler, 3, group=0) == pytest.approx([0.2, 0.15, 0.1])
    optimizer2 = torch.optim.SGD(
        [
            {"params": list(model.embedding.named_parameters(prefix="embedding"))},
            {"params": list(model.decoder.named_parameters(prefix="decoder"))},
        ],
        lr=0.5,
    )
    scheduler2 = configure_lr_scheduler(optimizer2, entry, adjust_learning_rate={"decoder": 0.1})
    assert lrs(optimizer2, scheduler2, 3, group=1) == pytest.approx([0.02, 0.015, 0.01])


def test_adjust_learning_rate_set_in_the_param_groups_is_kept():
    optimizer = sgd(groups=2)
    optimizer.param_groups[0]["adjust_learning_rate"] = 2.0
    optimizer.param_groups[1]["adjust_learning_rate"] = 0.5
    configure_lr_scheduler(optimizer, 0.1, adjust_learning_rate={"anything": 3.0})
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.2, 0.05])


def test_no_adjustment_means_no_wrapper():
    scheduler = configure_lr_scheduler(sgd(), 0.1, adjust_learning_rate={})
    assert type(scheduler) is lr_scheduler.ConstantLR


def test_group_mixing_factors_is_an_error():
    model = TwoLayers()
    optimizer = torch.optim.SGD(model.named_parameters(), lr=0.5)
    message = error_of(configure_lr_scheduler, optimizer, 0.1, {"decoder": 0.1})
    assert "param group 0 mixes parameters with different factors" in message
    assert "adjust_learning_rate" not in optimizer.param_groups[0]
    assert optimizer.param_groups[0]["lr"] == 0.5


def test_misspelt_adjustment_key_is_an_error_with_a_suggestion():
    model = TwoLayers()
    optimizer = torch.optim.SGD(model.named_parameters(), lr=0.5)
    message = error_of(configure_lr_scheduler, optimizer, 0.1, {"embeding": 0.1, "decoder": 0.1, "embedding": 0.1})
    assert "key 'embeding' matches no parameter name (did you mean 'embedding'?)" in message


def test_groups_without_names_or_factors_are_explained():
    message = error_of(configure_lr_scheduler, sgd(), 0.1, {"decoder": 0.1})
    assert "named_parameters()" in message


def test_negative_factor_is_an_error():
    model = TwoLayers()
    optimizer = torch.optim.SGD(model.named_parameters(), lr=0.5)
    message = error_of(configure_lr_scheduler, optimizer, 0.1, {"decoder": -1.0})
    assert message.startswith("adjust_learning_rate.decoder: the factor must be a finite number >= 0")
