"""Under ``Trainer(strategy="wse")`` every training step runs on the static-graph device."""
import warnings

import lightning as L
import pytest
import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode
from torch.utils.data import DataLoader

import wse.optim
from wse.device import (
    GraphChangeError,
    HostHyperparameterError,
    HostSyncError,
    LazyOptimizerStateError,
    ShapeChangeError,
    StaticGraphViolation,
    StaticGraphWarning,
)
from wse.lightning import WSEStrategy, WSEStrategyWarning
from wse.optim.lr_scheduler import CosineDecayLR
from wse.optim.weight_decay_scheduler import CosineDecayWD

from .helpers import QUIET, TinyModel, dataset, loader, rank_zero_lines


def line_of(marker: str) -> int:
    """The line of this file tagged with the comment ``#@marker``."""
    with open(__file__) as handle:
        found = [number for number, line in enumerate(handle, 1) if line.rstrip().endswith("#@" + marker)]
    assert len(found) == 1, f"marker {marker!r} on lines {found}"
    return found[0]


def assert_located(error: StaticGraphViolation, marker: str) -> None:
    assert error.location is not None, str(error)
    assert (error.location.filename, error.location.lineno) == (__file__, line_of(marker)), str(error)


def adamw_with_schedules(module):
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-2, weight_decay=0.1)
    lr = CosineDecayLR(optimizer, 1e-2, 1e-4, total_iters=60)
    wd = CosineDecayWD(optimizer, 0.1, 0.01, total_iters=60)
    return [optimizer], [{"scheduler": lr, "interval": "step"}, {"scheduler": wd, "interval": "step"}]


class Logged(TinyModel):
    """A clean model that logs its loss to the progress bar, as most do."""

    def __init__(self, configure=adamw_with_schedules, **kwargs):
        super().__init__(configure, **kwargs)

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.log("train_loss", loss, prog_bar=True)
        return loss


def fit(module, strategy, data=None, **trainer_options):
    options = {**QUIET, "max_steps": 6, **trainer_options}
    trainer = L.Trainer(strategy=strategy, **options)
    trainer.fit(module, data if data is not None else loader(batches=6, drop_last=True))
    return trainer


# -- a clean model ----------------------------------------------------------------------------


def test_a_clean_model_that_logs_passes_strict_mode_and_the_report_is_logged():
    with rank_zero_lines() as lines:
        trainer = fit(Logged(), WSEStrategy(), max_steps=8)
    report = trainer.strategy.device.report()
    assert (report.check, report.steps, report.steps_verified, report.violations) == ("strict", 8, 3, {})
    assert trainer.global_step == 8 and trainer.callback_metrics["train_loss"] > 0
    # Forward, backward, the AdamW update and both schedules' updates (cosines) are the graph.
    operations = [str(event[0]) for event in trainer.strategy.device.graph.events]
    assert report.graph_ops > 50 and "aten.mse_loss_backward.default" in operations
    assert operations.count("aten.cos.default") == 2 and "aten.addcdiv_.default" in operations
    # Lightning's logging runs beside the graph: the step logged is the same graph as unlogged.
    unlogged = fit(TinyModel(adamw_with_schedules), WSEStrategy(), max_steps=2)
    assert unlogged.strategy.device.graph.fingerprint == report.graph_fingerprint
    # The end of the fit is one line; the report's detail is at DEBUG level and in report().
    text = report.format()
    assert text not in lines and not any(line.startswith("graph:") for line in lines)
    (end,) = [line for line in lines if line.startswith("wse") and "8 steps" in line]
    assert "no violations" in end and "\n" not in end
    assert text.splitlines()[0] == report.summary()
    assert "8 steps, step 1 captured and 3 verified" in text.splitlines()[0]
    assert "violations: none" in text and "optimizer state" in text


def test_preinitialized_state_makes_step_one_the_graph():
    class Graphs(L.Callback):
        seen = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.seen.append(trainer.strategy.device.graph)

    graphs = Graphs()
    fit(Logged(), WSEStrategy(verify_steps=4), callbacks=[graphs])
    # torch.optim.AdamW got its state at setup: no lazy part to take from step 2.
    assert len(graphs.seen) == 6 and all(graph is graphs.seen[0] for graph in graphs.seen)


def test_a_lazy_optimizer_let_through_by_strict_warn_has_its_update_taken_from_step_two():
    from .test_strategy import HomeMadeSGD  # creates its buffers inside its first step()

    class Graphs(L.Callback):
        seen = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.seen.append(trainer.strategy.device.graph)

    graphs = Graphs()
    with pytest.warns(WSEStrategyWarning, match="HomeMadeSGD"):
        trainer = fit(TinyModel(lambda m: HomeMadeSGD(m.parameters())), WSEStrategy(strict="warn"), callbacks=[graphs])
    assert graphs.seen[1] is not graphs.seen[0] and all(graph is graphs.seen[1] for graph in graphs.seen[1:])
    assert trainer.strategy.device.report().violations == {}


def test_only_batches_that_step_the_optimizer_are_device_steps():
    trainer = fit(Logged(), WSEStrategy(), data=loader(batches=6), max_steps=-1, max_epochs=2, accumulate_grad_batches=3)
    assert trainer.global_step == 4
    assert trainer.strategy.device.step_count == 4
    assert trainer.strategy.device.report().violations == {}


def test_schedulers_are_stepped_inside_the_step_and_lightning_steps_them_no_more():
    class DuringTheFit(L.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):  # inside the step
            self.lr = trainer.optimizers[0].param_groups[0]["lr"]
            self.tensor_values = [config.scheduler.uses_tensor_values for config in trainer.lr_scheduler_configs]

    seen = DuringTheFit()
    trainer = fit(Logged(), WSEStrategy(), max_steps=5, callbacks=[seen])
    schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
    assert [scheduler.last_epoch for scheduler in schedulers] == [5, 5]
    # In the graph during the fit; the user's floats again after it.
    assert seen.tensor_values == [True, True] and seen.lr.dtype == torch.float64
    assert not any(scheduler.uses_tensor_values for scheduler in schedulers)
    assert type(trainer.optimizers[0].param_groups[0]["lr"]) is float
    # Lightning's own per-step scheduler update is given back after the fit.
    assert "update_lr_schedulers" not in vars(trainer.fit_loop.epoch_loop)


def test_manual_optimization_runs_the_whole_training_step_on_the_device():
    class Manual(Logged):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False

        def training_step(self, batch, batch_idx):
            optimizer = self.optimizers()
            loss = TinyModel.training_step(self, batch, batch_idx)
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()
            self.log("train_loss", loss)

    trainer = fit(Manual(), WSEStrategy())
    report = trainer.strategy.device.report()
    assert (report.steps, report.steps_verified, report.violations) == (6, 3, {})
    assert [config.scheduler.last_epoch for config in trainer.lr_scheduler_configs] == [6, 6]


# -- the five violations, each at the test's own line ------------------------------------------


class ReadsItem(Logged):
    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        if loss.item() > 100:  #@item
            print("diverging")
        return loss


class BranchesOnGlobalStep(Logged):
    def training_step(self, batch, batch_idx):
        x, y = batch
        prediction = self.net(x)
        if self.global_step == 2:
            prediction = prediction * 0.5  #@global-step
        return torch.nn.functional.mse_loss(prediction, y)


def torch_step_lr(module):
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1), "interval": "step"}}


class TracksGradientPeaks(torch.optim.SGD):
    """SGD with a momentum buffer it allocates itself, and a peak-gradient buffer created lazily in step()."""

    def preinitialize(self):
        self.steps_taken = 0
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["momentum_buffer"] = torch.zeros_like(p)

    @torch.no_grad()
    def step(self, closure=None):
        loss = super().step(closure)
        self.steps_taken += 1
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                if "peak" in state:
                    torch.maximum(state["peak"], p.grad.abs(), out=state["peak"])
                elif self.steps_taken >= 2:
                    state["peak"] = p.grad.abs()  #@lazy-state
        return loss


def test_item_in_training_step_is_a_host_sync_error_at_that_line():
    trainer = L.Trainer(strategy="wse", max_steps=4, **QUIET)
    with pytest.raises(HostSyncError) as caught:
        trainer.fit(ReadsItem(), loader(drop_last=True))
    assert_located(caught.value, "item")
    assert caught.value.step == 1 and ".item()" in str(caught.value)
    assert not trainer.strategy.device.in_step, "the failed step was dropped"
    assert "update_lr_schedulers" not in vars(trainer.fit_loop.epoch_loop), "Lightning's loop is restored"


def test_a_short_last_batch_without_drop_last_is_a_shape_change():
    trainer = L.Trainer(strategy="wse", max_epochs=1, **QUIET)
    data = DataLoader(dataset(batches=6), batch_size=5)  # 24 samples: the fifth batch has 4
    with pytest.raises(ShapeChangeError) as caught:
        trainer.fit(Logged(), data)  #@short-batch
    assert_located(caught.value, "short-batch")
    assert caught.value.step == 5  # past the verification window: inputs are still compared
    message = str(caught.value)
    assert "f32[4, 4] now, f32[5, 4] captured" in message and "drop_last=True" in message


def test_control_flow_on_global_step_is_a_graph_change_at_the_branch():
    trainer = L.Trainer(strategy="wse", max_steps=6, **QUIET)
    with pytest.raises(GraphChangeError) as caught:
        trainer.fit(BranchesOnGlobalStep(), loader(drop_last=True))
    assert_located(caught.value, "global-step")
    assert caught.value.step == 3  # global_step counts completed steps
    assert "now:      aten.mul.Tensor(f32[4, 2], <float>) -> f32[4, 2]" in str(caught.value)


def test_a_torch_step_lr_is_a_host_hyperparameter_error_in_strict_mode():
    trainer = L.Trainer(strategy=WSEStrategy(check="strict"), max_steps=4, **QUIET)
    with pytest.raises(HostHyperparameterError) as caught:
        trainer.fit(TinyModel(torch_step_lr), loader(drop_last=True))  #@step-lr
    assert_located(caught.value, "step-lr")
    assert caught.value.step == 0, "found at setup, before any step"
    message = str(caught.value)
    assert "torch.optim.lr_scheduler.StepLR (scheduler of SGD) writes its value" in message
    assert "wse.optim.lr_scheduler.StepLR(optimizer, initial_learning_rate, step_size, gamma)" in message


def test_state_an_optimizer_creates_in_a_later_step_is_lazy_state_at_the_creating_line():
    trainer = L.Trainer(strategy="wse", max_steps=5, **QUIET)
    module = TinyModel(lambda m: TracksGradientPeaks(m.parameters(), lr=0.1, momentum=0.9))
    with pytest.raises(LazyOptimizerStateError) as caught:
        trainer.fit(module, loader(drop_last=True))
    assert_located(caught.value, "lazy-state")
    assert caught.value.step == 2
    assert "'peak' of parameter net.0.weight was created (f32[3, 4])" in str(caught.value)
    assert trainer.strategy._optimizer_setup == ["TracksGradientPeaks: preinitialize()"]


# -- modes ------------------------------------------------------------------------------------


def test_warn_mode_warns_once_per_kind_and_finishes_training():
    class TwoMistakes(BranchesOnGlobalStep):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            float(loss)
            return loss

    strategy = WSEStrategy(check="warn", verify_steps=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = fit(TwoMistakes(torch_step_lr), strategy, max_steps=6)
    assert trainer.global_step == 6
    ours = [w.message for w in caught if isinstance(w.message, StaticGraphWarning)]
    assert sorted(w.kind for w in ours) == ["graph change", "host hyperparameter", "host sync"]
    assert all(w.location.filename == __file__ for w in ours)
    violations = strategy.device.report().violations
    assert violations["host sync"] == 6 and violations["graph change"] == 1


def instruments(optimizer) -> dict:
    """What a checked step installs, seen from inside the step."""
    return {
        "dispatch mode": _get_current_dispatch_mode() is not None,
        "function modes": torch._C._len_torch_function_stack(),
        "optimizer hooks": len(optimizer._optimizer_step_pre_hooks) + len(optimizer._optimizer_step_post_hooks),
    }


class Probed(Logged):
    def __init__(self):
        super().__init__()
        self.seen = []

    def training_step(self, batch, batch_idx):
        self.seen.append(instruments(self.trainer.optimizers[0]))
        return super().training_step(batch, batch_idx)


def test_off_mode_installs_nothing_and_switches_nothing():
    module = Probed()
    trainer = fit(module, WSEStrategy(check="off"))
    nothing = {"dispatch mode": False, "function modes": 0, "optimizer hooks": 0}
    assert module.seen == [nothing] * 6
    assert not any(config.scheduler.uses_tensor_values for config in trainer.lr_scheduler_configs)
    report = trainer.strategy.device.report()
    assert (report.steps, report.steps_verified, report.graph_fingerprint) == (6, 0, None)


def test_strict_mode_instruments_only_the_checked_steps():
    module = Probed()
    fit(module, WSEStrategy(verify_steps=2, verify_every=5))
    checked = [seen["dispatch mode"] and seen["optimizer hooks"] == 2 for seen in module.seen]
    assert checked == [True, True, True, False, True, False]


# -- compiled ---------------------------------------------------------------------------------

STEPS = 50


class LossRecorder(L.Callback):
    def __init__(self):
        self.losses = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(outputs["loss"].item())


def train(strategy, steps: int = STEPS, seed: int = 0):
    module, losses = Logged(seed=seed), LossRecorder()
    data = loader(batches=10, drop_last=True, shuffle=False)
    trainer = fit(module, strategy, data=data, max_steps=steps, callbacks=[losses])
    return module, losses.losses, trainer


def assert_same_training(a, b, rtol=1e-5, atol=1e-6):
    (module_a, losses_a, _), (module_b, losses_b, _) = a, b
    torch.testing.assert_close(torch.tensor(losses_b), torch.tensor(losses_a), rtol=rtol, atol=atol)
    for p, q in zip(module_a.parameters(), module_b.parameters()):
        torch.testing.assert_close(q, p, rtol=rtol, atol=atol)


def test_compiled_steps_match_eager_lightning_over_50_steps_and_compile_once():
    eager = train("auto")
    compiled = train(WSEStrategy(compile=True, compile_backend="aot_eager"))
    assert_same_training(eager, compiled)
    trainer = compiled[2]
    assert float(trainer.callback_metrics["train_loss"]) == pytest.approx(float(eager[2].callback_metrics["train_loss"]), rel=1e-5)
    report = trainer.strategy.device.report()
    assert (report.steps, report.steps_verified, report.violations) == (STEPS, 3, {})
    assert report.execution == "compiled" and report.compiled_graphs >= 2  # training_step and update
    assert report.recompilations == 0
    assert [config.scheduler.last_epoch for config in trainer.lr_scheduler_configs] == [STEPS, STEPS]


class ProbeBeforeUpdate(L.Callback):
    """Runs inside every step, eagerly even when the step's pieces are compiled."""

    def __init__(self):
        self.seen = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.seen.append(instruments(optimizer))


def test_compile_with_verify_every_switches_between_checked_and_compiled_steps():
    probe = ProbeBeforeUpdate()
    strategy = WSEStrategy(compile=True, compile_backend="aot_eager", verify_steps=1, verify_every=4)
    trainer = fit(Logged(), strategy, max_steps=9, callbacks=[probe])
    checked = [seen["dispatch mode"] for seen in probe.seen]
    assert checked == [True, True, False, True, False, False, False, True, False]
    report = trainer.strategy.device.report()
    assert (report.steps, report.steps_verified, report.recompilations) == (9, 3, 0)


def test_a_compiled_step_compiled_again_is_counted_and_warned_about_once():
    class KeepsHistory(Logged):
        def __init__(self):
            super().__init__()
            self.history = []

        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            self.history.append(loss.detach())  # a Python list that grows: a new graph each step
            return loss

    with pytest.warns(RuntimeWarning, match="compiled again") as caught:
        trainer = fit(KeepsHistory(), WSEStrategy(compile=True, compile_backend="aot_eager", verify_steps=1), max_steps=5)
    assert len([w for w in caught if "compiled again" in str(w.message)]) == 1
    assert trainer.strategy.device.report().recompilations == 2  # steps 4 and 5; step 3 compiled first


def test_compile_refuses_manual_optimization():
    class Manual(TinyModel):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False

    trainer = L.Trainer(strategy=WSEStrategy(compile=True), max_steps=1, **QUIET)
    with pytest.raises(ValueError, match="manual optimization"):
        trainer.fit(Manual(), loader())


@pytest.mark.slow
def test_inductor_compiled_steps_match_eager_lightning():
    eager = train("auto", steps=20)
    compiled = train(WSEStrategy(compile=True), steps=20)
    assert_same_training(eager, compiled, rtol=1e-4, atol=1e-5)
    assert compiled[2].strategy.device.report().recompilations == 0


# -- CUDA graphs ------------------------------------------------------------------------------


def cuda_adamw(module):
    optimizer = wse.optim.AdamW(module.parameters(), lr=1e-2, weight_decay=0.1)
    lr = CosineDecayLR(optimizer, 1e-2, 1e-4, total_iters=60)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": lr, "interval": "step"}}


def train_on_cuda(strategy, steps: int = STEPS):
    module, losses = Logged(cuda_adamw), LossRecorder()
    options = {**QUIET, "accelerator": "gpu", "max_steps": steps, "callbacks": [losses]}
    L.Trainer(strategy=strategy, **options).fit(module, loader(batches=10, drop_last=True))
    return module.cpu(), losses.losses, None


@pytest.mark.gpu
def test_the_update_replayed_from_a_cuda_graph_matches_eager_lightning():
    eager = train_on_cuda("auto")
    strategy = WSEStrategy(replay="cuda_graph")
    replayed = train_on_cuda(strategy)
    assert_same_training(eager, replayed)
    report = strategy.device.report()
    assert report.execution == "replayed from a CUDA graph" and report.violations == {}


@pytest.mark.gpu
def test_compiled_and_replayed_on_cuda_matches_eager_lightning():
    eager = train_on_cuda("auto")
    strategy = WSEStrategy(compile=True, replay="cuda_graph")
    assert_same_training(eager, train_on_cuda(strategy), rtol=1e-4, atol=1e-5)
    assert strategy.device.report().recompilations == 0
