"""The compat faces as torch schedulers: placeholders, error types, tensor values, Megatron's logging helper."""
from functools import partial

import pytest
import torch

from wse.compat.megatron import OptimizerParamScheduler, get_canonical_lr_for_logging
from wse.compat.pytorch_accelerated import (
    CosineLrScheduler,
    SchedulerArgumentError,
    TrainerPlaceholderValues as P,
    WSDLrScheduler,
    fill_placeholders,
)

from .golden_cases import optimizer

MEGATRON = dict(
    init_lr=1e-4, max_lr=1e-3, min_lr=1e-5, lr_warmup_steps=4, lr_decay_steps=30, lr_decay_style="WSD",
    wsd_decay_steps=10, lr_wsd_decay_style="cosine", start_wd=0.01, end_wd=0.1, wd_incr_steps=30,
    wd_incr_style="cosine",
)


def wsd(opt):
    return WSDLrScheduler(opt, total_steps=40, num_warmup_steps=5, num_checkpoints=2, decay_phase_ratio=0.25)


def cosine(opt):
    return CosineLrScheduler(opt, total_num_epochs=4, num_update_steps_per_epoch=10, num_warmup_epochs=1,
                             warmup_starting_lr=1e-3, lr_min=1e-4)


def megatron(opt):
    return OptimizerParamScheduler(opt, **MEGATRON)


FACES = {"WSDLrScheduler": wsd, "CosineLrScheduler": cosine, "OptimizerParamScheduler": megatron}


def values(opt):
    """Every group's lr, then every group's weight decay, as numbers."""
    return [float(group[key]) for key in ("lr", "weight_decay") for group in opt.param_groups]


# -- placeholders --------------------------------------------------------------------------


def test_placeholders_support_the_arithmetic_users_write():
    run = dict(num_epochs=10, num_update_steps_per_epoch=50, train_dataloader_len=200, eval_dataloader_len=30)
    cases = {
        P.NUM_EPOCHS + 2: 12,
        2 + P.NUM_EPOCHS: 12,
        P.NUM_EPOCHS - 1: 9,
        30 - P.NUM_EPOCHS: 20,
        P.NUM_UPDATE_STEPS_PER_EPOCH * 5: 250,
        (P.NUM_EPOCHS + 1) * 2: 22,  # grouping as written (pytorch-accelerated would give 12)
        P.NUM_EPOCHS * 2 + 1: 21,
        P.TRAIN_DATALOADER_LEN // 8: 25,
        P.EVAL_DATALOADER_LEN / 4: 7.5,
    }
    fn = partial(dict, **{f"k{i}": expression for i, expression in enumerate(cases)})
    filled = fill_placeholders(fn, **run)()
    assert list(filled.values()) == list(cases.values())
    assert P.placeholder_set() == {
        "NUM_EPOCHS", "NUM_UPDATE_STEPS_PER_EPOCH", "PER_PROCESS_NUM_UPDATE_STEPS_PER_EPOCH",
        "TRAIN_DATALOADER_LEN", "EVAL_DATALOADER_LEN",
    }
    with pytest.raises(TypeError, match="combined with numbers only"):
        P.NUM_EPOCHS + "2"


def test_a_placeholder_expression_builds_the_scheduler_once_filled():
    fn = CosineLrScheduler.create_scheduler_fn(total_num_epochs=P.NUM_EPOCHS + 2,
                                               num_update_steps_per_epoch=P.TRAIN_DATALOADER_LEN)
    with pytest.raises(TypeError, match="placeholder"):
        fn(optimizer([0.1]))
    with pytest.raises(TypeError, match="train_dataloader_len"):
        fill_placeholders(fn, num_epochs=3)
    scheduler = fill_placeholders(fn, num_epochs=3, train_dataloader_len=7)(optimizer([0.1]))
    assert scheduler.total_iterations == (3 + 2) * 7


# -- the error type of bad arguments ---------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda opt: WSDLrScheduler(opt, total_steps=0),
        lambda opt: WSDLrScheduler(opt, total_steps=100, decay_phase_ratio=1.5),
        lambda opt: WSDLrScheduler(opt, total_steps=100, lr_min=-1.0),
        lambda opt: WSDLrScheduler(opt, total_steps=100, num_checkpoints=0),
        lambda opt: WSDLrScheduler(opt, total_steps=100, num_checkpoints=3, decay_phase_ratio=0.5),
        lambda opt: CosineLrScheduler(opt, total_num_epochs=0, num_update_steps_per_epoch=10),
        lambda opt: CosineLrScheduler(opt, total_num_epochs=2, num_update_steps_per_epoch=10, lr_min=-1.0),
    ],
)
def test_bad_arguments_raise_an_error_that_is_a_value_error_and_an_assertion_error(build):
    opt = optimizer([0.1])
    with pytest.raises(SchedulerArgumentError) as error:
        build(opt)
    assert isinstance(error.value, ValueError) and isinstance(error.value, AssertionError)
    try:  # code written against pytorch-accelerated
        build(opt)
    except AssertionError:
        pass
    assert opt.param_groups[0]["lr"] == 0.1


# -- torch's scheduler API -------------------------------------------------------------------


@pytest.mark.parametrize("name", FACES)
def test_faces_are_torch_schedulers_with_its_bookkeeping(name):
    opt = optimizer([1e-3, 2e-3])
    scheduler = FACES[name](opt)
    assert isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler)
    assert scheduler._step_count == 1
    first = scheduler.get_last_lr()
    assert first == [group["lr"] for group in opt.param_groups]
    start = scheduler.last_epoch
    for _ in range(6):
        scheduler.step()  # no argument, as Lightning and Accelerate call it
    assert scheduler.last_epoch == start + 6 and scheduler._step_count == 7
    # `first` was a new list: the steps since left it alone.
    assert scheduler.get_last_lr() == [group["lr"] for group in opt.param_groups] != first


# -- tensor values ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", FACES)
def test_tensor_values_are_updated_in_place_and_equal_the_host_values(name):
    host_opt, tensor_opt = optimizer([1e-3, 2e-3]), optimizer([1e-3, 2e-3])
    host = FACES[name](host_opt)
    host.step()
    tensor = FACES[name](tensor_opt)
    tensor.step()
    assert not tensor.uses_tensor_values
    assert tensor.enable_tensor_values(dtype=torch.float64) is tensor and tensor.uses_tensor_values
    held = [dict(group) for group in tensor_opt.param_groups]
    assert values(tensor_opt) == values(host_opt)
    for _ in range(35):
        host.step()
        tensor.step()
        assert values(tensor_opt) == pytest.approx(values(host_opt), rel=1e-12, abs=1e-18)
    for before, group in zip(held, tensor_opt.param_groups):
        assert group["lr"] is before["lr"] and isinstance(group["lr"], torch.Tensor)
    assert tensor.last_epoch == host.last_epoch and tensor.state_dict() == host.state_dict()
    tensor.disable_tensor_values()
    assert not tensor.uses_tensor_values
    assert all(type(group["lr"]) is float for group in tensor_opt.param_groups)
    assert values(tensor_opt) == pytest.approx(values(host_opt), rel=1e-12, abs=1e-18)


@pytest.mark.parametrize("name", FACES)
def test_loading_a_state_in_tensor_mode_resumes_from_the_loaded_step(name):
    reference_opt = optimizer([1e-3])
    reference = FACES[name](reference_opt)
    for _ in range(12):
        reference.step()
    state = reference.state_dict()
    opt = optimizer([1e-3])
    resumed = FACES[name](opt).enable_tensor_values(dtype=torch.float64)
    opt.param_groups[0]["lr"] = 5.0  # as an optimizer's load_state_dict replaces the tensor
    resumed.load_state_dict(state)
    for _ in range(10):
        reference.step()
        resumed.step()
        assert isinstance(opt.param_groups[0]["lr"], torch.Tensor)
        assert values(opt) == pytest.approx(values(reference_opt), rel=1e-12, abs=1e-18)


# -- Megatron-Core ---------------------------------------------------------------------------


def test_megatron_step_defaults_to_one_and_writes_a_tensor_lr_in_place():
    opt = optimizer([0.5, 0.5])
    lr = torch.tensor(0.5, dtype=torch.float64)
    opt.param_groups[1]["lr"] = lr
    scheduler = OptimizerParamScheduler(opt, **MEGATRON)
    scheduler.step()
    scheduler.step(2)
    assert scheduler.num_steps == 3
    assert opt.param_groups[1]["lr"] is lr and lr.item() == pytest.approx(1e-4 + (1e-3 - 1e-4) * 3 / 4, rel=1e-12)
    assert opt.param_groups[0]["lr"] == pytest.approx(lr.item(), rel=1e-12)
    assert isinstance(opt.param_groups[1]["weight_decay"], float)  # Megatron-Core replaces it


def test_get_canonical_lr_for_logging_reads_the_first_default_config_group():
    opt = optimizer([0.1, 0.1, 0.1], [{"max_lr": 2e-3}, {"default_config": True}, {"default_config": True}])
    opt.param_groups[1]["params"] = []  # an empty group is still written and read
    scheduler = OptimizerParamScheduler(opt, **dict(MEGATRON, lr_warmup_steps=0, init_lr=1e-3))
    scheduler.step(5)
    assert get_canonical_lr_for_logging(opt.param_groups) == opt.param_groups[1]["lr"] == pytest.approx(1e-3)
    assert opt.param_groups[0]["lr"] == pytest.approx(2e-3)
    assert get_canonical_lr_for_logging([{"lr": 0.1}, {"lr": 0.2, "default_config": False}]) is None
    assert get_canonical_lr_for_logging([]) is None


@pytest.mark.slow  # compiles three small graphs
@pytest.mark.parametrize("name", FACES)
def test_a_compiled_step_keeps_following_the_schedule(name):
    host_opt, compiled_opt = optimizer([1e-3]), optimizer([1e-3])
    host, scheduler = FACES[name](host_opt), FACES[name](compiled_opt).enable_tensor_values(dtype=torch.float64)
    step = torch.compile(lambda: scheduler.step(), backend="aot_eager", fullgraph=False)
    for _ in range(8):
        host.step()
        step()
        assert values(compiled_opt) == pytest.approx(values(host_opt), rel=1e-12, abs=1e-18)
    assert scheduler.last_epoch == host.last_epoch
