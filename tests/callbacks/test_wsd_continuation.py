"""WSDCheckpointCallback: WSD and WSD-S continuation, the published faults, bad input, every WSD face."""
import warnings

import lightning as L
import pytest
import torch

from wse.callbacks import WSDCheckpointCallback
from wse.compat.megatron import OptimizerParamScheduler

from ..wsd.helpers import BASE_LR, WarmupStableDecayLR, WSDModel, files_in, fit, pa_update_lrs, pa_wsd, wsd_value


class StartState(L.Callback):
    """The model and optimizer state the run starts training from."""

    def on_train_start(self, trainer, pl_module):
        self.model = {k: v.clone() for k, v in pl_module.state_dict().items()}
        optimizer = trainer.optimizers[0]
        self.exp_avg = [optimizer.state[p]["exp_avg"].clone() for p in pl_module.parameters()]
        self.lr = optimizer.param_groups[0]["lr"]
        self.scheduler = trainer.lr_scheduler_configs[0].scheduler


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """A 2-checkpoint, 40-step run: pre-decay at 16 and 36, post-decay at 20 and 40."""
    directory = tmp_path_factory.mktemp("first")
    fit(directory, [WSDCheckpointCallback(save_dir=directory)])
    return directory


def continuation(optimizer):
    return pa_wsd(optimizer, total_steps=20, num_checkpoints=2, is_continuation_from_checkpoint=True)


# The continuation's learning rates: two checkpoints spaced over its own 20 steps, no warmup.
CONTINUATION_LRS = pa_update_lrs(20, total_steps=20, count=2, warmup=0)


def assert_started_from(start, saved_model, saved_optimizer):
    for name, tensor in saved_model.items():
        assert torch.equal(start.model[name], tensor), name
    for p, (i, state) in zip(start.exp_avg, sorted(saved_optimizer["state"].items())):
        assert torch.equal(p, state["exp_avg"])


def test_wsd_continuation_from_a_pre_decay_checkpoint(first_run, tmp_path):
    """A fresh stable phase over the new length, no warmup; the flag stays on after loading the state
    (pytorch-accelerated 0.1.61 turns it off again, so its continuation warms up like a new run)."""
    source = first_run / "checkpoint_36_wsd_pre_decay"
    start = StartState()
    callback = WSDCheckpointCallback(save_dir=tmp_path / "next", initial_checkpoint=source)
    _, model = fit(tmp_path, [callback, start], max_steps=20, model=WSDModel(continuation))

    saved = torch.load(source, weights_only=True)
    assert saved["lr_schedulers"][0]["is_continuation_from_checkpoint"] is False
    assert start.scheduler.is_continuation_from_checkpoint is True
    assert_started_from(start, saved["state_dict"], saved["optimizer_states"][0])
    assert model.lrs == pytest.approx(CONTINUATION_LRS, rel=1e-12, abs=0)
    assert model.lrs[:9] == [BASE_LR] * 9  # stable from the first update: no warmup
    assert files_in(tmp_path / "next") == [
        "checkpoint_10_wsd_post_decay.pt", "checkpoint_18_wsd_pre_decay",
        "checkpoint_20_wsd_post_decay.pt", "checkpoint_8_wsd_pre_decay",
    ]
    assert torch.load(tmp_path / "next" / "checkpoint_20_wsd_post_decay.pt", weights_only=True)["total_steps"] == 20


def test_wsd_s_continuation_from_a_post_decay_checkpoint(first_run, tmp_path):
    source = first_run / "checkpoint_20_wsd_post_decay.pt"
    start = StartState()
    callback = WSDCheckpointCallback(save_dir=tmp_path, initial_checkpoint=source)
    _, model = fit(tmp_path, [callback, start], max_steps=20, model=WSDModel(continuation))

    saved = torch.load(source, weights_only=True)
    assert_started_from(start, saved["model_state_dict"], saved["optimizer_state_dict"])
    # The saved optimizer ran at a decayed lr; the continuation runs at its own.
    assert saved["optimizer_state_dict"]["param_groups"][0]["lr"] < BASE_LR / 2
    assert start.lr == BASE_LR and start.scheduler.is_continuation_from_checkpoint is True
    assert model.lrs == pytest.approx(CONTINUATION_LRS, rel=1e-12, abs=0)


def test_continuing_with_a_scheduler_that_is_not_a_continuation_warns(first_run, tmp_path):
    callback = WSDCheckpointCallback(save_dir=tmp_path, initial_checkpoint=first_run / "checkpoint_16_wsd_pre_decay")
    with pytest.warns(UserWarning, match="is_continuation_from_checkpoint=True"):
        fit(tmp_path, [callback], max_steps=20, model=WSDModel(lambda o: pa_wsd(o, total_steps=20, num_checkpoints=1)))


# -- bad input: clear errors before any training ------------------------------------------


def refused(tmp_path, error, match, callback, **kwargs):
    model = kwargs.pop("model", None) or WSDModel()
    with pytest.raises(error, match=match):
        fit(tmp_path, [callback], model=model, **kwargs)
    assert model.lrs == []  # not a single training step ran


def test_a_scheduler_without_decay_periods_is_refused_naming_the_supported_ones(tmp_path):
    model = WSDModel(lambda o: torch.optim.lr_scheduler.StepLR(o, 10))
    refused(tmp_path, TypeError, r"got StepLR.*WSDLrScheduler.*lr_decay_style='WSD'.*WarmupStableDecay",
            WSDCheckpointCallback(save_dir=tmp_path), model=model)


def test_a_checkpoint_beyond_max_steps_is_refused(tmp_path):
    refused(tmp_path, ValueError, r"checkpoints at step\(s\) \[40\], beyond the run's 30 steps",
            WSDCheckpointCallback(save_dir=tmp_path), max_steps=30)


def test_an_unwritable_save_dir_is_refused(tmp_path):
    (tmp_path / "a-file").write_text("")
    refused(tmp_path, PermissionError, "save_dir .* is not a writable directory",
            WSDCheckpointCallback(save_dir=tmp_path / "a-file" / "checkpoints"))


def test_a_missing_initial_checkpoint_is_refused(tmp_path):
    refused(tmp_path, FileNotFoundError, "initial_checkpoint .*nowhere.* does not exist",
            WSDCheckpointCallback(save_dir=tmp_path, initial_checkpoint=tmp_path / "nowhere.pt"))


def test_an_initial_checkpoint_of_another_run_shape_is_refused(first_run, tmp_path):
    class Wider(WSDModel):
        def __init__(self):
            super().__init__(continuation)
            self.net[0] = torch.nn.Linear(4, 16)
            self.net[3] = torch.nn.Linear(16, 2)

    refused(tmp_path, ValueError, r"another shape .*net.0.weight: checkpoint \(8, 4\) vs model \(16, 4\)",
            WSDCheckpointCallback(save_dir=tmp_path, initial_checkpoint=first_run / "checkpoint_20_wsd_post_decay.pt"),
            model=Wider(), max_steps=20)


def test_initial_checkpoint_and_ckpt_path_together_are_refused(first_run, tmp_path):
    source = first_run / "checkpoint_16_wsd_pre_decay"
    refused(tmp_path, ValueError, "give only one",
            WSDCheckpointCallback(save_dir=tmp_path, initial_checkpoint=source), ckpt_path=source)


def test_branches_refuse_manual_optimization(tmp_path):
    class Manual(WSDModel):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False

    refused(tmp_path, ValueError, r"branch=True\) runs each decay as automatic-optimization steps.*manual optimization",
            WSDCheckpointCallback(save_dir=tmp_path, branch=True), model=Manual())


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="`branch` must be True or False"):
        WSDCheckpointCallback(branch="yes")


# -- the other WSD faces -------------------------------------------------------------------


def megatron(optimizer):
    return OptimizerParamScheduler(
        optimizer, init_lr=0.0, max_lr=BASE_LR, min_lr=1e-4, lr_warmup_steps=4, lr_decay_steps=40,
        lr_decay_style="WSD", start_wd=0.01, end_wd=0.01, wd_incr_steps=40, wd_incr_style="constant",
        wsd_decay_steps=8, lr_wsd_decay_style="linear",
    )


def megatron_value(t):
    """Megatron-Core's WSD: linear warmup through step 4, max_lr, linear anneal over the last 8 steps."""
    if t <= 4:
        return BASE_LR * t / 4
    if t <= 32:
        return BASE_LR
    return 1e-4 + (BASE_LR - 1e-4) * (1 - (t - 32) / 8)


def test_megatron_wsd(tmp_path):
    callback = WSDCheckpointCallback(save_dir=tmp_path / "ckpt")
    _, model = fit(tmp_path, [callback], model=WSDModel(megatron))
    assert files_in(tmp_path / "ckpt") == ["checkpoint_32_wsd_pre_decay", "checkpoint_40_wsd_post_decay.pt"]
    # Megatron steps once at construction: update n runs at step n - 1.
    assert model.lrs == pytest.approx([megatron_value(n - 1) for n in range(1, 41)], rel=1e-12, abs=1e-18)
    saved = torch.load(tmp_path / "ckpt" / "checkpoint_40_wsd_post_decay.pt", weights_only=True)
    assert saved["scheduler_state_dict"]["num_steps"] == 40 and saved["decay_fraction"] == 0.2


def test_wse_warmup_stable_decay_bound_by_a_scheduler(tmp_path):
    callback = WSDCheckpointCallback(save_dir=tmp_path / "ckpt")
    _, model = fit(tmp_path, [callback], model=WSDModel(WarmupStableDecayLR))
    assert files_in(tmp_path / "ckpt") == [
        "checkpoint_16_wsd_pre_decay", "checkpoint_20_wsd_post_decay.pt",
        "checkpoint_36_wsd_pre_decay", "checkpoint_40_wsd_post_decay.pt",
    ]
    # wse.optim schedulers step at construction: update n runs at step n - 1.
    expected = [wsd_value(n - 1, warmup_start=0.0, floor=1e-3) for n in range(1, 41)]
    assert model.lrs == pytest.approx(expected, rel=1e-12, abs=0)
