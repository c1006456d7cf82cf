"""WSDCheckpointCallback(branch=True): decays in branches leave the run bit-identical to a run that never decays."""
import pytest
import torch

from wse.callbacks import WSDCheckpointCallback

from ..wsd.helpers import BASE_LR, WarmupStableDecayLR, WSDModel, files_in, fit, loader, pa_update_lrs, pa_wsd


def stable(optimizer):
    """The same schedule without decay phases: warmup, then the stable lr to the end."""
    return pa_wsd(optimizer, decay_phase_ratio=0.0)


def optimizer_tensors(trainer):
    state = trainer.optimizers[0].state
    return [(p, k, v) for p in state for k, v in state[p].items()]


@pytest.mark.parametrize("settings", [{}, {"accumulate_grad_batches": 2}], ids=["plain", "accumulating"])
def test_branches_leave_the_run_bit_identical_to_a_run_without_decay(tmp_path, settings):
    """Dropout and a shuffled loader make every RNG draw count: a branch must give back each one."""
    callback = WSDCheckpointCallback(save_dir=tmp_path / "ckpt", branch=True)
    branched_trainer, branched = fit(tmp_path, [callback], trainer=settings)
    plain_trainer, plain = fit(tmp_path / "plain", [], model=WSDModel(stable), trainer=settings)
    per_update = settings.get("accumulate_grad_batches", 1)

    for name, tensor in plain.state_dict().items():
        assert torch.equal(branched.state_dict()[name], tensor), name
    a, b = optimizer_tensors(branched_trainer), optimizer_tensors(plain_trainer)
    assert len(a) == len(b) == 4 * 3  # step, exp_avg, exp_avg_sq of 4 parameters
    for (_, key, x), (_, _, y) in zip(a, b):
        assert torch.equal(x, y), key
    assert branched_trainer.optimizers[0].param_groups[0]["lr"] == plain_trainer.optimizers[0].param_groups[0]["lr"] == BASE_LR
    # The run took 40 steps at the stable schedule; the branches took the 2 x 4 decay steps.
    assert len(branched.lrs) == 48 * per_update and len(plain.lrs) == 40 * per_update
    assert files_in(tmp_path / "ckpt") == [
        "checkpoint_16_wsd_pre_decay", "checkpoint_20_wsd_post_decay.pt",
        "checkpoint_36_wsd_pre_decay", "checkpoint_40_wsd_post_decay.pt",
    ]
    # Each branch is written before the run goes on from its pre-decay step.
    assert [p.name for p in callback.written] == [
        "checkpoint_20_wsd_post_decay.pt", "checkpoint_16_wsd_pre_decay",
        "checkpoint_40_wsd_post_decay.pt", "checkpoint_36_wsd_pre_decay",
    ]


@pytest.mark.parametrize(
    "settings",
    [{}, {"precision": "bf16-mixed", "gradient_clip_val": 0.05}, {"accumulate_grad_batches": 2}],
    ids=["plain", "bf16-clipped", "accumulating"],
)
def test_a_branch_decays_like_the_run_would_have(tmp_path, settings):
    """With an unshuffled loader the branch trains on the very batches the run takes next, with the
    same dropout draws, through the strategy's precision and clipping: its post-decay model is the
    one a run that decays itself saves."""
    data = dict(data=loader(shuffle=False), trainer=settings)
    in_run = WSDCheckpointCallback(save_dir=tmp_path / "in-run")
    _, decaying = fit(tmp_path, [in_run], **data)
    branching = WSDCheckpointCallback(save_dir=tmp_path / "branch", branch=True)
    _, branched = fit(tmp_path, [branching], **data)

    a = torch.load(tmp_path / "in-run" / "checkpoint_20_wsd_post_decay.pt", weights_only=True)
    b = torch.load(tmp_path / "branch" / "checkpoint_20_wsd_post_decay.pt", weights_only=True)
    for name, tensor in a["model_state_dict"].items():
        assert torch.equal(b["model_state_dict"][name], tensor), name
    assert b["scheduler_state_dict"]["num_updates"] == 19 and b["optimizer_state_dict"]["state"][0]["step"] == 20
    # The branch ran the decay's learning rates, the run the stable ones (one entry per update).
    per_update = settings.get("accumulate_grad_batches", 1)
    branched_lrs, decaying_lrs = branched.lrs[::per_update], decaying.lrs[::per_update]
    assert branched.lrs == [lr for lr in branched_lrs for _ in range(per_update)]
    assert branched_lrs[16:20] == pytest.approx(pa_update_lrs(20)[16:20], rel=1e-12, abs=0)
    assert branched_lrs[20:24] == [BASE_LR] * 4
    assert decaying_lrs[:20] == pytest.approx(pa_update_lrs(20), rel=1e-12, abs=0)
    # The pre-decay checkpoints of both runs hold the same state.
    a = torch.load(tmp_path / "in-run" / "checkpoint_16_wsd_pre_decay", weights_only=True)
    b = torch.load(tmp_path / "branch" / "checkpoint_16_wsd_pre_decay", weights_only=True)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
def test_a_branch_run_resumed_inside_a_decay_window_holds_the_stable_lr(tmp_path):
    """The wse scheduler writes its (decayed) value when its state is loaded; the run must hold
    the stable one. Epochs of two batches put an epoch end, where Lightning resumes exactly,
    at step 18, inside the first decay window [16, 20]."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    every = ModelCheckpoint(dirpath=tmp_path / "every", every_n_train_steps=18, save_top_k=-1)
    run = dict(data=loader(samples=16, shuffle=False), trainer=dict(enable_checkpointing=True))
    _, whole = fit(tmp_path, [WSDCheckpointCallback(save_dir=tmp_path / "a", branch=True), every],
                   model=WSDModel(WarmupStableDecayLR, dropout=0.0), **run)
    (inside,) = [p for p in (tmp_path / "every").iterdir() if "step=18" in p.name]
    _, resumed = fit(tmp_path, [WSDCheckpointCallback(save_dir=tmp_path / "b", branch=True)],
                     model=WSDModel(WarmupStableDecayLR, dropout=0.0), ckpt_path=inside, **run)
    assert resumed.lrs[:2] == [BASE_LR, BASE_LR]  # updates 19 and 20 run in the window
    assert resumed.lrs == whole.lrs[-len(resumed.lrs):]
    for name, tensor in whole.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], tensor), name
    assert files_in(tmp_path / "b") == ["checkpoint_36_wsd_pre_decay", "checkpoint_40_wsd_post_decay.pt"]


@pytest.mark.gpu
def test_branches_on_cuda_leave_the_run_bit_identical(tmp_path):
    """On a GPU the snapshot keeps its copies in host memory and restores the CUDA generator too."""
    on_gpu = dict(trainer=dict(accelerator="gpu"))
    callback = WSDCheckpointCallback(save_dir=tmp_path / "ckpt", branch=True)
    branched_trainer, branched = fit(tmp_path, [callback], **on_gpu)
    plain_trainer, plain = fit(tmp_path / "plain", [], model=WSDModel(stable), **on_gpu)
    assert next(branched.parameters()).is_cuda
    for name, tensor in plain.state_dict().items():
        assert torch.equal(branched.state_dict()[name], tensor), name
    for (_, key, x), (_, _, y) in zip(optimizer_tensors(branched_trainer), optimizer_tensors(plain_trainer)):
        assert torch.equal(x, y), key
    saved = torch.load(tmp_path / "ckpt" / "checkpoint_20_wsd_post_decay.pt", weights_only=True)
    assert all(t.device.type == "cpu" for t in saved["model_state_dict"].values())

