"""The preview behind ``wse schedule``: its values are those that stepping writes, its horizon and rows."""
import pytest
import torch

from wse.optim import SchedulerConfigError
from wse.optim._config_preview import preview_config, table_steps

CONFIGS = {
    "sequence": {
        "SequentialLR": [
            {"LinearLR": {"initial_learning_rate": 0.0, "end_learning_rate": 1e-3, "total_iters": 7}},
            {"ExponentialLR": {"initial_learning_rate": 1e-3, "total_iters": 5, "decay_rate": 0.5, "staircase": True}},
            {"PolynomialLR": {"initial_learning_rate": 1e-3, "end_learning_rate": 1e-5, "total_iters": 20, "power": 2.0}},
        ]
    },
    "chained": {
        "ChainedLR": [
            {"CosineDecayLR": {"initial_learning_rate": 0.1, "end_learning_rate": 0.0, "total_iters": 30}},
            {"StepLR": {"initial_learning_rate": 2.0, "step_size": 7, "gamma": 0.5}},
        ]
    },
    "piecewise": {"PiecewiseConstantWD": {"vals": [0.1, 0.01, 0.001], "milestones": [5, 17]}},
    "cyclic": {"CyclicLR": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4, "mode": "triangular2"}},
    "one_cycle": {"OneCycleLR": {"initial_learning_rate": 0.004, "max_lr": 0.1, "total_steps": 30}},
    "warm_restarts": {"CosineAnnealingWarmRestarts": {"initial_learning_rate": 0.1, "T_0": 4, "T_mult": 2}},
    "multistep": {"MultiStepLR": {"initial_learning_rate": 0.1, "gamma": 0.1, "milestones": [3, 9]}},
    "legacy": [
        {"scheduler": "Linear", "learning_rate": 0.0, "end_learning_rate": 0.2, "steps": 4},
        {"scheduler": "InverseSquareRootDecay", "learning_rate": 0.2, "warmup_steps": 3},
    ],
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_preview_values_are_what_stepping_writes(name):
    preview = preview_config(CONFIGS[name], steps=60)
    ((key, scheduler),) = preview.schedulers.items()
    previewed = preview.values(key)
    group = scheduler.optimizer.param_groups[0]
    stepped = []
    for _ in range(60):
        stepped.append(float(group[key]))
        scheduler.step()
    assert previewed == pytest.approx(stepped, rel=1e-12, abs=1e-18)


def test_default_horizon_is_the_length_plus_ten_percent():
    assert preview_config(CONFIGS["sequence"]).steps == 36  # 7 + 5 + 20 = 32, * 1.1 rounded up
    assert preview_config(CONFIGS["one_cycle"]).steps == 33
    assert preview_config(CONFIGS["multistep"]).steps == 10
    assert preview_config(CONFIGS["cyclic"]).steps == 18  # two cycles of 4 up and 4 down
    assert preview_config({"StepLR": {"initial_learning_rate": 1.0, "step_size": 3, "gamma": 0.5}}).steps == 1000


def test_lr_and_wd_use_the_longer_horizon_and_keep_their_own_marks():
    config = {
        "lr": {"LinearLR": {"initial_learning_rate": 0.0, "end_learning_rate": 1.0, "total_iters": 10}},
        "wd": CONFIGS["piecewise"],
    }
    preview = preview_config(config)
    assert preview.steps == 19  # ceil(17 * 1.1)
    assert preview.marks == {"lr": [10], "weight_decay": [5, 17]}
    assert preview.all_marks == [5, 10, 17]


def test_marks_of_a_sequence_are_its_milestones_and_the_end_of_its_decays():
    preview = preview_config(CONFIGS["sequence"])
    assert preview.marks["lr"] == [7, 12, 32]


@pytest.mark.parametrize("steps", [1, 2, 5, 16, 17, 100, 10_000])
def test_table_rows_start_and_end_and_stay_compact(steps):
    rows = table_steps(steps, [steps // 3, steps // 2])
    assert rows[0] == 0 and rows[-1] == steps - 1
    assert rows == sorted(set(rows))
    assert len(rows) <= min(steps, 20)
    if steps >= 16:
        assert len(rows) >= 10


def test_many_milestones_are_thinned_to_twenty_rows():
    rows = table_steps(1000, list(range(10, 1000, 10)))
    assert len(rows) == 20 and rows[0] == 0 and rows[-1] == 999


def test_the_preview_group_is_tagged_as_the_config_asks():
    config = {"CosineDecayWD": {"initial_val": 0.1, "end_val": 0.0, "total_iters": 5, "param_group_tags": ["decay"]}}
    preview = preview_config(config)
    assert preview.schedulers["weight_decay"].optimizer.param_groups[0]["tags"] == ["decay"]
    assert preview.values("weight_decay")[0] == 0.1
    assert preview.values("lr") is None


def test_a_long_schedule_is_evaluated_at_once():
    config = {"CosineDecayLR": {"initial_learning_rate": 1.0, "end_learning_rate": 0.0, "total_iters": 1_000_000}}
    preview = preview_config(config)
    values = torch.tensor(preview.values("lr"))
    assert values.shape == (1_100_000,)
    assert values[500_000].item() == pytest.approx(0.5, abs=1e-12)


def test_keyed_config_errors_name_the_key():
    with pytest.raises(SchedulerConfigError, match=r"^lr\.LinearLR: missing required"):
        preview_config({"lr": {"LinearLR": {"initial_learning_rate": 1.0}}})
    with pytest.raises(SchedulerConfigError, match=r"^weight_decay: configures ConstantLR"):
        preview_config({"weight_decay": {"ConstantLR": {"learning_rate": 0.1}}})
