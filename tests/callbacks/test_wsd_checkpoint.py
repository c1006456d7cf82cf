"""WSDCheckpointCallback under Lightning: files, steps, contents, learning rates, resuming, continuation."""
import pytest
import torch

from wse.callbacks import WSDCheckpointCallback

from ..wsd.helpers import BASE_LR, WSDModel, files_in, fit, geometric, loader, pa_update_lrs, pa_wsd, wsd_value

METADATA = {"step", "current_epoch", "checkpoint_type", "total_steps", "decay_fraction", "timestamp"}


def expected_files(total_steps, count, ratio):
    names = []
    start = 0
    for end in geometric(total_steps, count):
        names += [f"checkpoint_{end - int((end - start) * ratio)}_wsd_pre_decay", f"checkpoint_{end}_wsd_post_decay.pt"]
        start = end
    return names


@pytest.mark.parametrize(
    "count, total_steps, pre, post",
    [(1, 40, [32], [40]), (2, 40, [16, 36], [20, 40]), (3, 48, [10, 22, 44], [12, 24, 48])],
)
def test_files_steps_and_contents_for_one_two_and_three_checkpoints(tmp_path, count, total_steps, pre, post):
    ratio = 0.2
    callback = WSDCheckpointCallback(save_dir=tmp_path / "ckpt")
    model = WSDModel(lambda o: pa_wsd(o, total_steps=total_steps, num_checkpoints=count, decay_phase_ratio=ratio))
    trainer, model = fit(tmp_path, [callback], max_steps=total_steps, model=model)

    names = expected_files(total_steps, count, ratio)
    assert sorted(names) == files_in(tmp_path / "ckpt")
    assert [p.name for p in callback.written] == names  # in the order of the run
    for step in pre:
        checkpoint = torch.load(tmp_path / "ckpt" / f"checkpoint_{step}_wsd_pre_decay", weights_only=True)
        assert METADATA <= set(checkpoint)
        assert (checkpoint["step"], checkpoint["global_step"], checkpoint["checkpoint_type"]) == (step, step, "wsd_pre_decay")
        assert checkpoint["current_epoch"] == (step - 1) // 4 and checkpoint["total_steps"] == total_steps
        period = next(end - start for start, end in zip([0] + geometric(total_steps, count), geometric(total_steps, count)) if end > step)
        assert checkpoint["decay_fraction"] == int(period * ratio) / period  # the share of this period that decays
        # A full training state: model, optimizer, scheduler with its update count, loops.
        assert {"state_dict", "optimizer_states", "lr_schedulers", "loops", "callbacks"} <= set(checkpoint)
        assert checkpoint["lr_schedulers"][0]["num_updates"] == step - 1
    for step in post:
        checkpoint = torch.load(tmp_path / "ckpt" / f"checkpoint_{step}_wsd_post_decay.pt", weights_only=True)
        assert set(checkpoint) == METADATA | {"model_state_dict", "optimizer_state_dict", "scheduler_state_dict"}
        assert (checkpoint["step"], checkpoint["checkpoint_type"], checkpoint["total_steps"]) == (step, "wsd_post_decay", total_steps)
        assert checkpoint["scheduler_state_dict"]["num_updates"] == step - 1
        assert checkpoint["optimizer_state_dict"]["state"][0]["step"] == step
    # The last post-decay checkpoint is the model the run ended with.
    last = torch.load(tmp_path / "ckpt" / f"checkpoint_{post[-1]}_wsd_post_decay.pt", weights_only=True)
    for name, tensor in model.state_dict().items():
        assert torch.equal(last["model_state_dict"][name], tensor)


def test_post_decay_checkpoint_without_optimizer_and_scheduler(tmp_path):
    callback = WSDCheckpointCallback(save_dir=tmp_path, save_optimizer=False, save_scheduler=False)
    fit(tmp_path, [callback], model=WSDModel(lambda o: pa_wsd(o, num_checkpoints=1)))
    checkpoint = torch.load(tmp_path / "checkpoint_40_wsd_post_decay.pt", weights_only=True)
    assert set(checkpoint) == METADATA | {"model_state_dict"}


def test_learning_rate_of_every_update_is_the_closed_form(tmp_path):
    trainer, model = fit(tmp_path, [WSDCheckpointCallback(save_dir=tmp_path)])
    expected = pa_update_lrs(40)
    assert model.lrs == pytest.approx(expected, rel=1e-12, abs=0)
    # Each phase is there: warmup from 1e-6, stable, a decay before each checkpoint.
    assert model.lrs[0] == pytest.approx(1e-6) and model.lrs[5] == BASE_LR
    assert model.lrs[18] == pytest.approx(BASE_LR * (1e-6 + (1 - 1e-6) * 0.5))  # update 19 runs step 17
    assert max(model.lrs[21:36]) == min(model.lrs[21:36]) == BASE_LR


@pytest.mark.parametrize("pre_decay_step", [16, 36])
def test_resume_from_every_pre_decay_checkpoint_continues_the_run_exactly(tmp_path, pre_decay_step):
    """pytorch-accelerated 0.1.61 cannot resume from the second pre-decay checkpoint of a 2-checkpoint run
    (it registers the scheduler for checkpointing again at every save), and its scheduler state has no
    update count, so a resumed run warms up again. Here the resumed run is the uninterrupted one
    (Lightning does not save RNG states, so the run draws no random numbers: no dropout, no shuffling)."""
    def run(directory, **kwargs):
        callback = WSDCheckpointCallback(save_dir=directory)
        _, model = fit(directory, [callback], model=WSDModel(dropout=0.0), data=loader(shuffle=False), **kwargs)
        return callback, model

    _, whole = run(tmp_path / "a")
    callback, resumed = run(tmp_path / "b", ckpt_path=tmp_path / "a" / f"checkpoint_{pre_decay_step}_wsd_pre_decay")

    assert resumed.lrs == whole.lrs[pre_decay_step:]  # no second warmup: the update count was saved
    for name, tensor in whole.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], tensor), name
    later = [n for n in expected_files(40, 2, 0.2) if int(n.split("_")[1]) > pre_decay_step]
    assert [p.name for p in callback.written] == later
    for name in later:
        a = torch.load(tmp_path / "a" / name, weights_only=True)
        b = torch.load(tmp_path / "b" / name, weights_only=True)
        weights = "model_state_dict" if "model_state_dict" in a else "state_dict"
        assert all(torch.equal(a[weights][k], b[weights][k]) for k in a[weights])


class QuietStepModel(WSDModel):
    """Reads nothing on the host inside the step, as strategy "wse" requires."""

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)


def test_under_strategy_wse_checkpoints_in_the_run(tmp_path):
    from ..wsd.helpers import WarmupStableDecayLR

    callback = WSDCheckpointCallback(save_dir=tmp_path / "ckpt")
    trainer, model = fit(tmp_path, [callback], model=QuietStepModel(WarmupStableDecayLR), trainer=dict(strategy="wse"))
    assert files_in(tmp_path / "ckpt") == sorted(expected_files(40, 2, 0.2))
    last = torch.load(tmp_path / "ckpt" / "checkpoint_40_wsd_post_decay.pt", weights_only=True)
    assert all(torch.equal(last["model_state_dict"][k], v) for k, v in model.state_dict().items())
