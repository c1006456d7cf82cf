"""WSDCheckpointCallback(branch=True) under strategy "wse": branches are checked device steps the run never sees."""
import functools
import warnings

import pytest
import torch

import wse.schedules as S
from wse.callbacks import WSDCheckpointCallback
from wse.device import StaticGraphWarning
from wse.lightning import WSEStrategy

from ..wsd.helpers import BASE_LR, WarmupStableDecayLR, WSDModel, files_in, fit, loader, pa_update_lrs, pa_wsd


class DeviceModel(WSDModel):
    """Reads nothing on the host inside the step, as strategy "wse" requires; records the run's lr between steps."""

    logged = 0

    def log(self, *args, **kwargs):
        self.logged += 1
        super().log(*args, **kwargs)

    def on_train_batch_start(self, batch, batch_idx):
        if batch_idx % self.trainer.accumulate_grad_batches == 0:  # between updates, not inside one
            self.lrs.append(float(self.trainer.optimizers[0].param_groups[0]["lr"]))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)  # host-side bookkeeping for the device; dropped in a branch
        return loss


class StableLR(WarmupStableDecayLR):
    """WarmupStableDecayLR without decay phases: its warmup, then the stable lr past the end of the run."""

    def _build_schedule(self):
        return S.WarmupStableDecay(BASE_LR, (20, 80), 0.0, 1e-3, "minus_sqrt", warmup_steps=4)


def pa_stable(optimizer):
    return pa_wsd(optimizer, decay_phase_ratio=0.0)


def on_wse(check="strict", **settings):
    return dict(strategy=WSEStrategy(check=check), **settings)


def optimizer_tensors(trainer):
    state = trainer.optimizers[0].state
    return [(k, v) for p in state for k, v in state[p].items()]


@pytest.mark.parametrize(
    "scheduler, stable, settings",
    [
        (WarmupStableDecayLR, StableLR, {}),
        (pa_wsd, pa_stable, {"accumulate_grad_batches": 2}),
    ],
    ids=["wse-scheduler", "pytorch-accelerated-accumulating"],
)
def test_branches_under_strategy_wse_leave_the_run_bit_identical(tmp_path, scheduler, stable, settings):
    """Dropout and a shuffled loader make every RNG draw count. The device captures step 1 and verifies
    steps 2..4 and every 8th, under strict checks: the second branch's last update is its step 40, verified
    against the run's graph before the run's own step 37 follows."""
    callback = WSDCheckpointCallback(save_dir=tmp_path / "ckpt", branch=True)
    strategy = WSEStrategy(check="strict", verify_every=8)
    branched_trainer, branched = fit(tmp_path, [callback], model=DeviceModel(scheduler), trainer=dict(strategy=strategy, **settings))
    plain_strategy = WSEStrategy(check="strict", verify_every=8)
    plain_trainer, plain = fit(tmp_path / "plain", [], model=DeviceModel(stable), trainer=dict(strategy=plain_strategy, **settings))

    for name, tensor in plain.state_dict().items():
        assert torch.equal(branched.state_dict()[name], tensor), name
    a, b = optimizer_tensors(branched_trainer), optimizer_tensors(plain_trainer)
    assert len(a) == len(b) == 4 * 3  # step, exp_avg, exp_avg_sq of 4 parameters
    for (key, x), (_, y) in zip(a, b):
        assert torch.equal(x, y), key
    assert branched_trainer.optimizers[0].param_groups[0]["lr"] == plain_trainer.optimizers[0].param_groups[0]["lr"] == BASE_LR
    assert branched.lrs == plain.lrs and len(branched.lrs) == 40
    assert branched.logged == plain.logged == 40 * settings.get("accumulate_grad_batches", 1)  # a branch's are dropped
    # The device counted the run's steps only, and checked the same ones in both runs.
    for report in (strategy.device.report(), plain_strategy.device.report()):
        assert (report.steps, report.captured_step, report.steps_verified, report.violations) == (40, 1, 8, {})
    assert files_in(tmp_path / "ckpt") == [
        "checkpoint_16_wsd_pre_decay", "checkpoint_20_wsd_post_decay.pt",
        "checkpoint_36_wsd_pre_decay", "checkpoint_40_wsd_post_decay.pt",
    ]


@pytest.mark.parametrize("check", ["strict", "warn", "off"])
def test_a_branch_under_strategy_wse_decays_like_the_run_would_have(tmp_path, check):
    """With an unshuffled loader the branch trains on the batches the run takes next: its post-decay model
    is the one a run under the same strategy that decays itself saves, whatever the check mode."""
    data = dict(data=loader(shuffle=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaticGraphWarning)  # a clean run: no check has anything to say
        _, decaying = fit(tmp_path, [WSDCheckpointCallback(save_dir=tmp_path / "in-run")],
                          model=DeviceModel(pa_wsd), trainer=on_wse(check), **data)
        branching = WSDCheckpointCallback(save_dir=tmp_path / "branch", branch=True)
        trainer, branched = fit(tmp_path, [branching], model=DeviceModel(pa_wsd),
                                trainer=on_wse(check), **data)

    a = torch.load(tmp_path / "in-run" / "checkpoint_20_wsd_post_decay.pt", weights_only=True)
    b = torch.load(tmp_path / "branch" / "checkpoint_20_wsd_post_decay.pt", weights_only=True)
    for name, tensor in a["model_state_dict"].items():
        assert torch.equal(b["model_state_dict"][name], tensor), name
    for x, y in zip(a["optimizer_state_dict"]["state"].values(), b["optimizer_state_dict"]["state"].values()):
        assert all(torch.equal(x[k], y[k]) for k in x)
    assert b["scheduler_state_dict"]["num_updates"] == a["scheduler_state_dict"]["num_updates"] == 19
    # The run decayed (updates 17..20 at the closed form's values); the branching run held the stable lr.
    assert decaying.lrs[:20] == pytest.approx(pa_update_lrs(20), rel=1e-12, abs=0)
    assert branched.lrs[:16] == decaying.lrs[:16] and branched.lrs[16:] == [BASE_LR] * 24
    assert trainer.strategy.device.report().steps == 40


@pytest.mark.slow
def test_compiled_branches_under_strategy_wse_leave_the_run_bit_identical(tmp_path, request):
    """Once verified, the run's steps and the branch's run compiled (the same compiled step, no recompilation)."""
    torch._dynamo.reset()  # compiled code is cached per code object: start afresh, and leave nothing behind
    request.addfinalizer(torch._dynamo.reset)
    strategies = [WSEStrategy(check="strict", compile=True, compile_backend="aot_eager") for _ in range(2)]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*compiled again")
        _, branched = fit(tmp_path, [WSDCheckpointCallback(save_dir=tmp_path / "ckpt", branch=True)],
                          model=DeviceModel(WarmupStableDecayLR), trainer=dict(strategy=strategies[0]))
        _, plain = fit(tmp_path / "plain", [], model=DeviceModel(StableLR), trainer=dict(strategy=strategies[1]))
    for name, tensor in plain.state_dict().items():
        assert torch.equal(branched.state_dict()[name], tensor), name
    assert branched.lrs == plain.lrs
    assert branched.logged == plain.logged == 40  # recorded in the compiled step, replayed: a branch's are dropped
    for strategy in strategies:
        report = strategy.device.report()
        assert (report.steps, report.recompilations, report.violations) == (40, 0, {})


class BranchOnlyOpModel(DeviceModel):
    """Runs one more operation on batch indices past an epoch's four, which only a branch crossing an epoch end uses."""

    def training_step(self, batch, batch_idx):
        x, y = batch
        if batch_idx >= 4:
            x = x * 1.0
        return torch.nn.functional.mse_loss(self.net(x), y)


def test_a_branch_step_that_changes_the_graph_is_reported_like_a_run_step(tmp_path):
    """The branch's updates are verified steps of the run's device: under check="strict" the first one
    (the device's step 17) raises; under "warn" it is warned and counted, and the run goes on. The counts
    of violations stay; the step count and the verified steps are the run's."""
    from wse.device import GraphChangeError

    def run(check):
        strategy = WSEStrategy(check=check, verify_every=1)
        callback = WSDCheckpointCallback(save_dir=tmp_path / check, branch=True)
        one_checkpoint = functools.partial(pa_wsd, total_steps=20, num_checkpoints=1)  # decays over updates 17-20
        fit(tmp_path, [callback], max_steps=20, model=BranchOnlyOpModel(one_checkpoint),
            trainer=dict(strategy=strategy), data=loader(shuffle=False))
        return strategy

    with pytest.raises(GraphChangeError, match="step 17 ran a different sequence of operations"):
        run("strict")
    with pytest.warns(StaticGraphWarning, match="step 17 ran a different sequence"):
        strategy = run("warn")
    report = strategy.device.report()
    # Warned once, counted at each of the 4 branch updates; the run's own 19 verified steps passed.
    assert (report.steps, report.steps_verified, report.violations) == (20, 19, {"graph change": 4})


@pytest.mark.gpu
def test_branches_under_strategy_wse_on_cuda_leave_the_run_bit_identical(tmp_path):
    """On a GPU the schedule's value tensors live on the device; the snapshot and the hold reach them there."""
    settings = lambda: dict(strategy=WSEStrategy(check="strict"), accelerator="gpu")  # noqa: E731
    _, branched = fit(tmp_path, [WSDCheckpointCallback(save_dir=tmp_path / "ckpt", branch=True)],
                      model=DeviceModel(WarmupStableDecayLR), trainer=settings())
    _, plain = fit(tmp_path / "plain", [], model=DeviceModel(StableLR), trainer=settings())
    assert next(branched.parameters()).is_cuda
    for name, tensor in plain.state_dict().items():
        assert torch.equal(branched.state_dict()[name], tensor), name
    assert branched.lrs == plain.lrs


@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
def test_a_branch_run_under_strategy_wse_resumed_inside_a_decay_window_holds_the_stable_lr(tmp_path):
    """Loading the scheduler's state writes its decayed value into its tensors; the resumed run must
    step with the stable one. Epochs of two batches end at step 18, inside the window [16, 20]."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    every = ModelCheckpoint(dirpath=tmp_path / "every", every_n_train_steps=18, save_top_k=-1)
    run = dict(data=loader(samples=16, shuffle=False))
    _, whole = fit(tmp_path, [WSDCheckpointCallback(save_dir=tmp_path / "a", branch=True), every],
                   model=DeviceModel(WarmupStableDecayLR, dropout=0.0),
                   trainer=on_wse(enable_checkpointing=True), **run)
    (inside,) = [p for p in (tmp_path / "every").iterdir() if "step=18" in p.name]
    _, resumed = fit(tmp_path, [WSDCheckpointCallback(save_dir=tmp_path / "b", branch=True)],
                     model=DeviceModel(WarmupStableDecayLR, dropout=0.0), trainer=on_wse(), ckpt_path=inside, **run)
    assert resumed.lrs[:2] == [BASE_LR, BASE_LR]  # updates 19 and 20 run in the window
    assert resumed.lrs == whole.lrs[-len(resumed.lrs):]
    for name, tensor in whole.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], tensor), name
    assert files_in(tmp_path / "b") == ["checkpoint_36_wsd_pre_decay", "checkpoint_40_wsd_post_decay.pt"]
