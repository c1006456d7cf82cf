"""The schedulers follow torch's LRScheduler conventions where users rely on them."""
import math

import pytest
import torch

from wse.optim import configure_lr_scheduler, configure_scheduler
from wse.optim import lr_scheduler as L
from wse.optim import weight_decay_scheduler as W


def cosine(initial, end, total, step):
    step = min(step, total)
    return end + (initial - end) * 0.5 * (1 + math.cos(math.pi * step / total))


def parameter():
    return torch.nn.Parameter(torch.zeros(2))


def sgd(groups=None, lr=0.5):
    return torch.optim.SGD(groups if groups is not None else [parameter()], lr=lr, weight_decay=0.25)


# -- get_last_lr and the last values -------------------------------------------------------


def test_get_last_lr_returns_a_new_list_that_later_steps_leave_alone():
    optimizer = sgd()
    scheduler = L.CosineDecayLR(optimizer, 0.1, 0.01, total_iters=10)
    taken = [scheduler.get_last_lr()]
    for _ in range(3):
        scheduler.step()
        taken.append(scheduler.get_last_lr())
    assert taken == [[pytest.approx(cosine(0.1, 0.01, 10, step), rel=1e-12)] for step in range(4)]
    assert scheduler.get_last_lr() is not scheduler.get_last_lr()
    assert scheduler.get_last_value() is not scheduler.get_last_value()


def test_last_values_after_construction_are_the_values_in_the_param_groups():
    decayed, untagged = parameter(), parameter()
    optimizer = sgd([{"params": [decayed], "tags": "decay"}, {"params": [untagged]}])
    lr = L.LinearLR(optimizer, 0.2, 0.0, total_iters=10)
    wd = W.ConstantWD(optimizer, 0.125, param_group_tags="decay")
    assert lr.get_last_lr() == [0.2, 0.2] == [group["lr"] for group in optimizer.param_groups]
    assert lr.state_dict()["_last_value"] == [0.2, 0.2]
    assert wd.get_last_value() == [0.125, None] and wd.state_dict()["_last_value"] == [0.125, None]
    assert optimizer.param_groups[1]["weight_decay"] == 0.25  # not targeted, left alone


# -- add_param_group after construction ----------------------------------------------------


@pytest.mark.parametrize("tensor_values", [False, True], ids=["host", "tensor"])
def test_a_group_added_after_construction_is_scheduled_from_the_next_step(tensor_values):
    optimizer = sgd()
    scheduler = L.CosineDecayLR(optimizer, 0.1, 0.01, total_iters=10)
    if tensor_values:
        scheduler.enable_tensor_values(dtype=torch.float64)
    scheduler.step()
    optimizer.add_param_group({"params": [parameter()], "lr": 7.0})
    assert optimizer.param_groups[1]["lr"] == 7.0  # its own initial value until the scheduler steps
    for step in range(2, 6):
        scheduler.step()
        expected = cosine(0.1, 0.01, 10, step)
        assert [float(group["lr"]) for group in optimizer.param_groups] == [pytest.approx(expected, rel=1e-12)] * 2
        assert [float(v) for v in scheduler.get_last_lr()] == [pytest.approx(expected, rel=1e-12)] * 2
    if tensor_values:
        assert all(isinstance(group["lr"], torch.Tensor) for group in optimizer.param_groups)
        assert optimizer.param_groups[0]["lr"] is not optimizer.param_groups[1]["lr"]


def test_an_added_group_brings_its_own_factor_and_tags():
    optimizer = sgd([{"params": [parameter()], "tags": "decay"}])
    scaled = L.ScalePerParamLR(optimizer, L.ConstantLR(optimizer, 0.5))
    tagged = W.ConstantWD(optimizer, 0.125, param_group_tags="decay")
    optimizer.add_param_group({"params": [parameter()], "adjust_learning_rate": 0.25, "weight_decay": 0.5})
    scaled.step()
    tagged.step()
    assert [group["lr"] for group in optimizer.param_groups] == [0.5, 0.125]
    assert [group["weight_decay"] for group in optimizer.param_groups] == [0.125, 0.5]  # untagged: left alone


# -- step(epoch) ---------------------------------------------------------------------------


@pytest.mark.parametrize("call", [lambda s: s.step(3), lambda s: s.step(epoch=2.5)], ids=["positional", "keyword"])
def test_step_with_an_epoch_is_refused_and_changes_nothing(call):
    optimizer = sgd()
    scheduler = L.CosineAnnealingWarmRestarts(optimizer, 0.1, T_0=4)
    with pytest.raises(TypeError, match="once per optimizer step"):
        call(scheduler)
    assert scheduler.last_epoch == 0 and optimizer.param_groups[0]["lr"] == 0.1
    scheduler.step(None)  # torch's default is still accepted
    assert scheduler.last_epoch == 1


# -- ConstantLR: learning_rate and val -----------------------------------------------------


def test_constant_lr_takes_learning_rate_or_val_everywhere():
    optimizer = sgd()
    built = [
        L.ConstantLR(optimizer, 0.5),
        L.ConstantLR(optimizer, learning_rate=0.5),
        L.ConstantLR(optimizer, val=0.5),
        configure_scheduler(optimizer, {"ConstantLR": {"val": 0.5}}),
        configure_scheduler(optimizer, {"ConstantLR": {"learning_rate": 0.5}}),
        configure_scheduler(optimizer, "SequentialLR:\n  - ConstantLR: {val: 0.5, total_iters: 2}\n"
                                       "  - ConstantLR: {learning_rate: 0.5}\n"),
        configure_lr_scheduler(optimizer, {"scheduler": "Constant", "val": 0.5}),
        configure_lr_scheduler(optimizer, {"scheduler": "ConstantLR", "learning_rate": 0.5}),
    ]
    for scheduler in built:
        assert scheduler.get_last_lr() == [0.5]
    assert built[2].val == built[2].learning_rate == 0.5
    assert "learning_rate" in built[2].state_dict()


@pytest.mark.parametrize("kwargs, word", [({}, "neither"), ({"learning_rate": 0.5, "val": 0.5}, "both")])
def test_constant_lr_needs_exactly_one_of_learning_rate_and_val(kwargs, word):
    with pytest.raises(TypeError, match=f"`learning_rate` or as `val`.*got {word}"):
        L.ConstantLR(sgd(), **kwargs)
    with pytest.raises(ValueError, match=f"ConstantLR: .*got {word}"):
        configure_scheduler(sgd(), {"ConstantLR": kwargs})


# -- param_group_tags ----------------------------------------------------------------------


def test_every_tag_must_match_a_group_and_the_error_suggests_the_nearest_tag():
    optimizer = sgd([{"params": [parameter()], "tags": "decay"}, {"params": [parameter()], "tags": ["no_decay"]}])
    before = [dict(group) for group in optimizer.param_groups]
    with pytest.raises(ValueError, match=r"'nodecay' \(did you mean 'no_decay'\?\) matches no param group") as error:
        W.CosineDecayWD(optimizer, 0.1, 0.0, total_iters=10, param_group_tags=["decay", "nodecay"])
    assert "Available tags: 'decay', 'no_decay'" in str(error.value)
    assert [dict(group) for group in optimizer.param_groups] == before
    with pytest.raises(ValueError, match=r"None \(untagged groups\) matches no param group"):
        L.ConstantLR(optimizer, 0.1, param_group_tags=[None, "decay"])
    with pytest.raises(ValueError, match="'nodecay'"):
        configure_scheduler(optimizer, {"ConstantWD": {"val": 0.1, "param_group_tags": ["decay", "nodecay"]}})
    W.ConstantWD(optimizer, 0.1, param_group_tags=["decay", "no_decay"])
    assert [group["weight_decay"] for group in optimizer.param_groups] == [0.1, 0.1]
