"""configure_scheduler: the {ClassName: arguments} format, nesting, sources, and its errors."""
import json
import math

import pytest
import torch

from wse.optim import SchedulerConfigError, configure_scheduler, lr_scheduler, weight_decay_scheduler


def sgd(*tags):
    """One param group per entry of ``tags`` (None: untagged), lr 0.5 and weight decay 0.25."""
    groups = []
    for tag in tags or (None,):
        group = {"params": [torch.nn.Parameter(torch.zeros(1))]}
        if tag is not None:
            group["tags"] = tag
        groups.append(group)
    return torch.optim.SGD(groups, lr=0.5, weight_decay=0.25)


def values(optimizer, scheduler, steps, key="lr", group=0):
    out = []
    for _ in range(steps):
        out.append(float(optimizer.param_groups[group][key]))
        scheduler.step()
    return out


def linear(start, end, total, t):
    return start + (end - start) * min(t, total) / total


def cosine(start, end, total, t):
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * min(t, total) / total))


SEED_EXAMPLE = """
SequentialLR:
    - LinearLR:
        initial_learning_rate: 0.01
        end_learning_rate: 0.001
        total_iters: 100
    - ExponentialLR:
        initial_learning_rate: 0.001
        decay_rate: 0.8
        total_iters: 100
"""


# -- building ----------------------------------------------------------------------------


def test_single_scheduler_from_a_mapping():
    optimizer = sgd()
    scheduler = configure_scheduler(
        optimizer, {"LinearLR": {"initial_learning_rate": 0.01, "end_learning_rate": 0.001, "total_iters": 100}}
    )
    assert type(scheduler) is lr_scheduler.LinearLR
    got = values(optimizer, scheduler, 120)
    assert got == pytest.approx([linear(0.01, 0.001, 100, t) for t in range(120)], rel=1e-12)


def test_sequential_milestones_are_computed_from_total_iters():
    optimizer = sgd()
    scheduler = configure_scheduler(optimizer, SEED_EXAMPLE)
    assert type(scheduler) is lr_scheduler.SequentialLR
    assert scheduler._milestones == [100]
    got = values(optimizer, scheduler, 250)
    expected = [linear(0.01, 0.001, 100, t) if t < 100 else 0.001 * 0.8 ** ((t - 100) / 100) for t in range(250)]
    assert got == pytest.approx(expected, rel=1e-12)


def test_three_part_sequence_has_cumulative_milestones_and_the_last_needs_no_length():
    optimizer = sgd()
    config = {
        "SequentialLR": [
            {"LinearLR": {"initial_learning_rate": 0.0, "end_learning_rate": 1.0, "total_iters": 10}},
            {"ConstantLR": {"learning_rate": 1.0, "total_iters": 20}},
            # StepLR takes no total_iters: inside a sequence it is consumed as its length.
            {"StepLR": {"initial_learning_rate": 1.0, "step_size": 5, "gamma": 0.5, "total_iters": 15}},
            {"ConstantLR": {"learning_rate": 0.01}},
        ]
    }
    scheduler = configure_scheduler(optimizer, config)
    assert scheduler._milestones == [10, 30, 45]
    got = values(optimizer, scheduler, 50)
    assert got[5] == pytest.approx(0.5)
    assert got[10:30] == [1.0] * 20
    assert got[30:35] == [1.0] * 5 and got[35:40] == [0.5] * 5 and got[40:45] == [0.25] * 5
    assert got[45:] == [0.01] * 5


def test_sequential_accepts_the_mapping_form_and_matching_milestones():
    optimizer = sgd()
    children = [
        {"ConstantLR": {"learning_rate": 0.1, "total_iters": 3}},
        {"ConstantLR": {"learning_rate": 0.2}},
    ]
    scheduler = configure_scheduler(optimizer, {"SequentialLR": {"schedulers": children, "milestones": [3]}})
    assert values(optimizer, scheduler, 5) == [0.1, 0.1, 0.1, 0.2, 0.2]


def test_nested_sequence_with_an_explicit_length():
    optimizer = sgd()
    inner = {
        "schedulers": [
            {"ConstantLR": {"learning_rate": 0.1, "total_iters": 2}},
            {"ConstantLR": {"learning_rate": 0.2}},
        ],
        "total_iters": 4,
    }
    config = {"SequentialLR": [{"SequentialLR": inner}, {"ConstantLR": {"learning_rate": 0.3}}]}
    scheduler = configure_scheduler(optimizer, config)
    assert values(optimizer, scheduler, 6) == [0.1, 0.1, 0.2, 0.2, 0.3, 0.3]


def test_chained_multiplies_relative_factors():
    optimizer = sgd()
    config = {
        "ChainedLR": [
            {"CosineDecayLR": {"initial_learning_rate": 0.1, "end_learning_rate": 0.0, "total_iters": 100}},
            {"StepLR": {"initial_learning_rate": 2.0, "step_size": 25, "gamma": 0.5}},
        ]
    }
    scheduler = configure_scheduler(optimizer, config)
    assert type(scheduler) is lr_scheduler.ChainedLR
    got = values(optimizer, scheduler, 100)
    expected = [cosine(0.1, 0.0, 100, t) * 0.5 ** (t // 25) for t in range(100)]
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_weight_decay_schedulers_and_sequential_wd():
    optimizer = sgd()
    config = {
        "SequentialWD": [
            {"LinearWD": {"initial_val": 0.0, "end_val": 0.1, "total_iters": 10}},
            {"CosineDecayWD": {"initial_val": 0.1, "end_val": 0.01, "total_iters": 40}},
        ]
    }
    scheduler = configure_scheduler(optimizer, config)
    assert type(scheduler) is weight_decay_scheduler.SequentialWD
    got = values(optimizer, scheduler, 60, key="weight_decay")
    expected = [linear(0, 0.1, 10, t) if t < 10 else cosine(0.1, 0.01, 40, t - 10) for t in range(60)]
    assert got == pytest.approx(expected, rel=1e-12)
    assert optimizer.param_groups[0]["lr"] == 0.5  # the learning rate is untouched


def test_scale_per_param_nests_one_scheduler():
    optimizer = sgd(None, None)
    optimizer.param_groups[1]["adjust_learning_rate"] = 0.1
    config = {"ScalePerParamLR": {"scheduler": {"ConstantLR": {"learning_rate": 0.5}}}}
    scheduler = configure_scheduler(optimizer, config)
    assert type(scheduler) is lr_scheduler.ScalePerParamLR
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.5, 0.05])


def test_parent_tags_apply_to_children_that_give_none():
    optimizer = sgd("decay", "no_decay")
    config = {
        "SequentialWD": {
            "param_group_tags": "decay",
            "schedulers": [
                {"ConstantWD": {"val": 0.1, "total_iters": 2}},
                {"ConstantWD": {"val": 0.2}},
            ],
        }
    }
    scheduler = configure_scheduler(optimizer, config)
    got = [[g["weight_decay"] for g in optimizer.param_groups]]
    for _ in range(2):
        scheduler.step()
        got.append([g["weight_decay"] for g in optimizer.param_groups])
    assert got == [[0.1, 0.25], [0.1, 0.25], [0.2, 0.25]]


def test_children_tags_apply_to_a_parent_that_gives_none():
    optimizer = sgd("decay", None)
    config = {
        "SequentialWD": [
            {"ConstantWD": {"val": 0.1, "total_iters": 2, "param_group_tags": "decay"}},
            {"ConstantWD": {"val": 0.2, "param_group_tags": "decay"}},
        ]
    }
    configure_scheduler(optimizer, config)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.1, 0.25]


# -- sources -----------------------------------------------------------------------------


def test_yaml_file_json_file_and_yaml_text_give_the_same_scheduler(tmp_path):
    config = {"CosineDecayLR": {"initial_learning_rate": 0.001, "end_learning_rate": 1.0e-5, "total_iters": 50}}
    yaml_path = tmp_path / "lr.yaml"
    yaml_path.write_text("CosineDecayLR:\n  initial_learning_rate: 1e-3\n  end_learning_rate: 1e-5\n  total_iters: 50\n")
    json_path = tmp_path / "lr.json"
    json_path.write_text(json.dumps(config))
    runs = []
    for source in (config, str(yaml_path), yaml_path, str(json_path), yaml_path.read_text()):
        optimizer = sgd()
        runs.append(values(optimizer, configure_scheduler(optimizer, source), 60))
    assert all(run == runs[0] for run in runs)
    assert runs[0][25] == pytest.approx(cosine(1e-3, 1e-5, 50, 25), rel=1e-12)


def test_yaml_exponent_without_a_point_is_a_number():
    optimizer = sgd()
    configure_scheduler(optimizer, "ConstantLR: {learning_rate: 3e-4}")
    assert optimizer.param_groups[0]["lr"] == 3e-4


def test_older_learning_rate_format_is_accepted_too():
    optimizer = sgd()
    scheduler = configure_scheduler(optimizer, {"scheduler": "Linear", "learning_rate": 1.0, "end_learning_rate": 0.0, "steps": 4})
    assert type(scheduler) is lr_scheduler.LinearLR
    assert values(optimizer, scheduler, 5) == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])


def test_missing_file_and_invalid_yaml_are_config_errors(tmp_path):
    with pytest.raises(SchedulerConfigError, match="no such config file"):
        configure_scheduler(sgd(), str(tmp_path / "missing.yaml"))
    with pytest.raises(SchedulerConfigError, match="not valid YAML"):
        configure_scheduler(sgd(), "LinearLR: [1, 2")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{'LinearLR': {}}")
    with pytest.raises(SchedulerConfigError, match="not valid JSON"):
        configure_scheduler(sgd(), bad_json)


# -- errors ------------------------------------------------------------------------------


def error_of(config, optimizer=None):
    with pytest.raises(SchedulerConfigError) as caught:
        configure_scheduler(optimizer or sgd(), config)
    assert isinstance(caught.value, ValueError)
    return str(caught.value)


def test_unknown_name_suggests_the_closest_class():
    message = error_of({"CosineDecyLR": {}})
    assert "unknown scheduler 'CosineDecyLR'" in message
    assert "did you mean 'CosineDecayLR'" in message


def test_old_model_zoo_name_suggests_its_lr_and_wd_forms():
    message = error_of({"Constant": {"val": 0.1}})
    assert "'ConstantLR'" in message and "'ConstantWD'" in message


def test_generic_scheduler_cannot_be_built_and_names_its_concrete_forms():
    message = error_of({"CosineDecayScheduler": {"initial_val": 1.0, "end_val": 0.0, "total_iters": 3}})
    assert "generic" in message and "'CosineDecayLR'" in message and "'CosineDecayWD'" in message


def test_nested_unexpected_argument_names_its_path_and_the_close_match():
    config = {
        "SequentialLR": [
            {"LinearLR": {"initial_learning_rate": 0.0, "end_learning_rate": 1.0, "total_iters": 10}},
            {"CosineDecayLR": {"initial_learning_rate": 1.0, "end_learning_rate": 0.0, "totl_iters": 90}},
        ]
    }
    message = error_of(config)
    assert message.startswith(
        "SequentialLR[1].CosineDecayLR: unexpected argument 'totl_iters' (did you mean 'total_iters'?)"
    )


def test_missing_required_arguments_are_named():
    message = error_of({"LinearLR": {"initial_learning_rate": 0.1}})
    assert message.startswith("LinearLR: missing required arguments 'end_learning_rate', 'total_iters'")


def test_optimizer_in_the_config_is_an_error():
    message = error_of({"ConstantLR": {"learning_rate": 0.1, "optimizer": "sgd"}})
    assert "unexpected argument 'optimizer'" in message


@pytest.mark.parametrize(
    "config, expected",
    [
        # Each message is the scheduler constructor's own, behind the config path.
        (
            {"CosineDecayLR": {"initial_learning_rate": float("nan"), "end_learning_rate": 0.0, "total_iters": 10}},
            "CosineDecayLR: `initial_learning_rate` must be finite, got nan.",
        ),
        (
            {"LinearLR": {"initial_learning_rate": 1.0, "end_learning_rate": 0.0, "total_iters": 0}},
            "LinearLR: `total_iters` must be > 0 steps, got 0.",
        ),
        (
            {"ExponentialLR": {"initial_learning_rate": 1.0, "total_iters": 10, "decay_rate": -0.5}},
            "ExponentialLR: `decay_rate` must be >= 0, got -0.5.",
        ),
        (
            {"MultiStepLR": {"initial_learning_rate": 1.0, "gamma": 0.1, "milestones": [30, 10]}},
            "MultiStepLR: `milestones` must be strictly increasing, got [30, 10] (10 does not come after 30).",
        ),
        (
            {"PiecewiseConstantLR": {"learning_rates": [0.1, 0.01], "milestones": [10, 20]}},
            "PiecewiseConstantLR: expected exactly one more value than milestones, got 2 values and 2 milestones.",
        ),
        (
            {"ConstantWD": {"val": "0.1"}},
            "ConstantWD: `val` must be a number, got '0.1' (str).",
        ),
    ],
)
def test_constructor_value_errors_surface_unchanged(config, expected):
    assert error_of(config) == expected


def test_constructor_error_of_a_child_carries_its_path():
    config = {
        "SequentialLR": [
            {"ConstantLR": {"learning_rate": 0.1, "total_iters": 5}},
            {"LinearLR": {"initial_learning_rate": 0.1, "end_learning_rate": float("inf"), "total_iters": 5}},
        ]
    }
    assert error_of(config) == "SequentialLR[1].LinearLR: `end_learning_rate` must be finite, got inf."


def test_non_positive_length_of_a_sequence_child_is_an_error():
    config = {
        "SequentialLR": [
            {"StepLR": {"initial_learning_rate": 1.0, "step_size": 2, "gamma": 0.5, "total_iters": -3}},
            {"ConstantLR": {"learning_rate": 0.1}},
        ]
    }
    assert error_of(config) == "SequentialLR[0].StepLR: `total_iters` must be > 0 steps, got -3."


def test_sequence_child_without_length_is_an_error():
    config = {
        "SequentialLR": [
            {"ConstantLR": {"learning_rate": 0.1}},
            {"ConstantLR": {"learning_rate": 0.2}},
        ]
    }
    message = error_of(config)
    assert message.startswith("SequentialLR[0].ConstantLR: needs `total_iters`")


def test_milestones_that_disagree_with_the_lengths_are_an_error():
    children = [{"ConstantLR": {"learning_rate": 0.1, "total_iters": 3}}, {"ConstantLR": {"learning_rate": 0.2}}]
    message = error_of({"SequentialLR": {"schedulers": children, "milestones": [5]}})
    assert "`milestones` [5] disagree with [3]" in message


def test_mixing_lr_and_wd_children_is_an_error():
    config = {
        "SequentialLR": [
            {"ConstantLR": {"learning_rate": 0.1, "total_iters": 3}},
            {"ConstantWD": {"val": 0.2}},
        ]
    }
    assert "schedules 'weight_decay', not 'lr'" in error_of(config)


@pytest.mark.parametrize(
    "config, expected",
    [
        ({}, "expected exactly one key"),
        ({"LinearLR": {}, "CosineDecayLR": {}}, "Give one scheduler per config"),
        ({"initial_learning_rate": 0.1, "total_iters": 3}, "These look like arguments"),
        ({"LinearLR": [1, 2]}, "expected a mapping of its arguments"),
        ({"SequentialLR": {"schedulers": {"ConstantLR": {}}}}, "must be a non-empty list"),
        ({"SequentialLR": []}, "must be a non-empty list"),
        ("just text", "expected a mapping with one key"),
        (True, "expected a mapping with one key"),
        ({3: {}}, "a scheduler name must be a string"),
    ],
)
def test_malformed_configs_are_explained(config, expected):
    assert expected in error_of(config)


def test_bad_config_changes_nothing_in_the_optimizer():
    optimizer = sgd()
    error_of({"LinearLR": {"initial_learning_rate": 0.1, "end_learning_rate": 0.0, "total_iters": -1}}, optimizer)
    assert optimizer.param_groups[0]["lr"] == 0.5


def test_failure_after_a_built_child_restores_the_param_groups():
    optimizer = sgd()
    config = {
        "SequentialLR": [
            {"ConstantLR": {"learning_rate": 0.1, "total_iters": 5}},
            {"ConstantLR": {"learning_rate": float("nan")}},
        ]
    }
    error_of(config, optimizer)
    assert optimizer.param_groups[0]["lr"] == 0.5


def test_milestones_of_the_wrong_type_are_a_config_error():
    children = [{"ConstantLR": {"learning_rate": 0.1, "total_iters": 3}}, {"ConstantLR": {"learning_rate": 0.2}}]
    assert "disagree" in error_of({"SequentialLR": {"schedulers": children, "milestones": ["three"]}})


# -- the keyed format that `wse schedule` previews ------------------------------------------


def test_lr_and_weight_decay_entries_give_one_scheduler_each_in_the_order_written(tmp_path):
    path = tmp_path / "schedule.yaml"
    path.write_text(
        "weight_decay:\n  CosineDecayWD: {initial_val: 0.1, end_val: 0.01, total_iters: 20}\n"
        "lr:\n  SequentialLR:\n"
        "    - LinearLR: {initial_learning_rate: 0.0, end_learning_rate: 1.0e-3, total_iters: 5}\n"
        "    - CosineDecayLR: {initial_learning_rate: 1.0e-3, end_learning_rate: 1.0e-5, total_iters: 15}\n"
    )
    optimizer = sgd()
    wd, lr = configure_scheduler(optimizer, str(path))
    assert isinstance(wd, weight_decay_scheduler.CosineDecayWD) and isinstance(lr, lr_scheduler.SequentialLR)
    lrs, wds = [], []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        wds.append(optimizer.param_groups[0]["weight_decay"])
        lr.step()
        wd.step()
    expected = [linear(0.0, 1e-3, 5, t) if t < 5 else cosine(1e-3, 1e-5, 15, t - 5) for t in range(20)]
    assert lrs == pytest.approx(expected, rel=1e-12, abs=1e-18)
    assert wds == pytest.approx([cosine(0.1, 0.01, 20, t) for t in range(20)], rel=1e-12)


def test_keyed_entries_take_other_spellings_numbers_and_the_older_format():
    optimizer = sgd()
    schedulers = configure_scheduler(optimizer, {"learning_rate": {"scheduler": "Constant", "val": 0.125}, "wd": 0.5})
    assert [type(s).__name__ for s in schedulers] == ["ConstantLR", "ConstantWD"]
    assert (optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["weight_decay"]) == (0.125, 0.5)
    assert [type(s).__name__ for s in configure_scheduler(sgd(), {"lr": 0.5})] == ["ConstantLR"]


@pytest.mark.parametrize(
    "config, message",
    [
        ({"lr": 0.1, "learning_rate": 0.2}, "'learning_rate' and 'lr' both configure `lr`"),
        ({"lr": {"CosineDecayWD": {"initial_val": 0.1, "end_val": 0.0, "total_iters": 5}}},
         "lr: configures CosineDecayWD, which schedules `weight_decay`, not `lr`"),
        ({"lr": 0.1, "weight_decay": {"CosineDecayWD": {"initial_val": 0.1, "end_val": 0.0}}},
         "weight_decay.CosineDecayWD: missing required argument 'total_iters'"),
    ],
)
def test_a_bad_keyed_entry_names_itself_and_builds_nothing(config, message):
    optimizer = sgd()
    with pytest.raises(SchedulerConfigError, match=message):
        configure_scheduler(optimizer, config)
    assert (optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["weight_decay"]) == (0.5, 0.25)
