"""Series names: Lightning's own LearningRateMonitor, run beside ours on the same fit, is the reference."""
import lightning.pytorch.callbacks as lightning_callbacks
import pytest
import torch

from wse.callbacks import LearningRateMonitor

from .lr_monitor_helpers import fit


def _both(configure, manual=False, **monitor_kwargs):
    ours = LearningRateMonitor(**monitor_kwargs)
    theirs = lightning_callbacks.LearningRateMonitor(**monitor_kwargs)
    # One logger each, so the names of each monitor can be told apart.
    _, ours_log = fit(configure, [ours], manual=manual)
    _, theirs_log = fit(configure, [theirs], manual=manual)
    return ours_log, theirs_log


def _sgd_groups(module, **first_group):
    return torch.optim.SGD(
        [dict(params=module.first.parameters(), **first_group), dict(params=module.second.parameters(), lr=0.2)],
        lr=0.1, momentum=0.9, weight_decay=0.01,
    )


CASES = {
    "one group, no scheduler": lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.5, weight_decay=0.1),
    "one group with a scheduler": lambda m: (
        [opt := torch.optim.AdamW(m.parameters(), lr=0.1)],
        [{"scheduler": torch.optim.lr_scheduler.StepLR(opt, 2), "interval": "step"}],
    ),
    "one named group": lambda m: torch.optim.Adam([{"params": m.parameters(), "name": "all"}], lr=0.1),
    "two unnamed groups": lambda m: _sgd_groups(m),
    "a named and an unnamed group": lambda m: _sgd_groups(m, name="encoder"),
    "a named scheduler config": lambda m: (
        [opt := _sgd_groups(m)],
        [{"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 / (s + 1)), "name": "my_lr", "interval": "step"}],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_names_and_values_are_lightnings(case):
    ours, theirs = _both(CASES[case], logging_interval="step", log_momentum=True, log_weight_decay=True)
    assert ours.names() == theirs.names()
    for name in theirs.names():
        assert ours.series(name) == pytest.approx(theirs.series(name), rel=1e-7), name


def test_two_optimizers_of_one_class_in_manual_optimization():
    def configure(m):
        first = torch.optim.Adam(m.first.parameters(), lr=0.1, weight_decay=0.01)
        second = torch.optim.Adam(m.second.parameters(), lr=0.2, weight_decay=0.02)
        return [first, second], [torch.optim.lr_scheduler.StepLR(first, 1, gamma=0.5)]

    ours, theirs = _both(configure, manual=True, logging_interval="step", log_momentum=True, log_weight_decay=True)
    expected = {"lr-Adam", "lr-Adam-momentum", "lr-Adam-weight_decay", "lr-Adam-1", "lr-Adam-1-momentum", "lr-Adam-1-weight_decay"}
    assert ours.names() == theirs.names() == expected
    # Two optimizer steps per batch (max_steps=4): batches 0 and 1, logged under Lightning's
    # batch count; the scheduler steps once per batch in training_step.
    assert ours.series("lr-Adam") == theirs.series("lr-Adam") == pytest.approx({0: 0.1, 1: 0.05})
    assert ours.series("lr-Adam-1-weight_decay") == theirs.series("lr-Adam-1-weight_decay") == {0: 0.02, 1: 0.02}


def test_lr_and_wd_schedulers_on_one_optimizer_give_one_set_of_series():
    from wse.optim.lr_scheduler import LinearLR
    from wse.optim.weight_decay_scheduler import LinearWD

    def configure(m):
        opt = torch.optim.AdamW(m.parameters(), lr=0.1, weight_decay=0.1)
        return [opt], [LinearLR(opt, 0.1, 0.0, total_iters=4), LinearWD(opt, initial_val=0.1, end_val=0.0, total_iters=4)]

    _, log = fit(configure, [LearningRateMonitor()])
    assert log.names() == {"lr-AdamW", "lr-AdamW-weight_decay"}
    _, lightning_log = fit(configure, [lightning_callbacks.LearningRateMonitor()])
    assert lightning_log.names() == {"lr-AdamW", "lr-AdamW-1"}  # the same optimizer, twice


def test_tagged_groups_are_named_by_their_tags():
    def configure(m):
        return torch.optim.AdamW(
            [{"params": m.first.parameters(), "tags": "decay"}, {"params": m.second.parameters(), "tags": ["bias", "norm"]}],
            lr=0.1,
        )

    _, log = fit(configure, [LearningRateMonitor()])
    assert log.names() == {"lr-AdamW/decay", "lr-AdamW/decay-weight_decay", "lr-AdamW/bias+norm", "lr-AdamW/bias+norm-weight_decay"}


def test_groups_without_weight_decay_or_momentum_are_skipped():
    class Plain(torch.optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, {"lr": 0.3})

        def step(self, closure=None):
            if closure is not None:
                closure()

    _, log = fit(lambda m: Plain(m.parameters()), [LearningRateMonitor(log_momentum=True)])
    assert log.names() == {"lr-Plain"}
    with pytest.raises(KeyError):  # what Lightning's monitor does with such a group
        fit(lambda m: Plain(m.parameters()), [lightning_callbacks.LearningRateMonitor(log_weight_decay=True)])
