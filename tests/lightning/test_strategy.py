"""``Trainer(strategy="wse")``: registration, the one-process path, options, refusals."""
import lightning as L
import pytest
import torch
from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry
from torch.utils.data import RandomSampler

import wse
import wse.optim
from wse.device import StaticGraphWarning
from wse.lightning import LazyOptimizerStateError, WSEStrategy, WSEStrategyWarning
from wse.optim.lr_scheduler import LinearLR

from .helpers import QUIET, TinyModel, loader, rank_zero_lines


class Probe(L.Callback):
    """What the strategy looks like from inside a running fit."""

    def on_train_start(self, trainer, pl_module):
        self.process_group = torch.distributed.is_initialized()
        self.model_type = type(trainer.strategy.model)
        self.sampler_type = type(trainer.train_dataloader.sampler)
        self.state = {
            name: sorted(trainer.optimizers[0].state[p]) for name, p in pl_module.named_parameters()
        }


def test_importing_wse_registers_the_strategy():
    assert wse.WSEStrategy is WSEStrategy
    assert "wse" in StrategyRegistry
    trainer = L.Trainer(strategy="wse", **QUIET)
    assert isinstance(trainer.strategy, WSEStrategy)
    assert not trainer.strategy.is_multiprocess


def test_one_process_takes_the_single_device_path_and_preinitializes():
    probe = Probe()
    trainer = L.Trainer(strategy="wse", max_steps=2, callbacks=[probe], **QUIET)
    assert trainer.strategy.launcher is None
    adam = lambda module: torch.optim.Adam(module.parameters(), lr=0.01)  # noqa: E731
    trainer.fit(TinyModel(adam), loader(shuffle=True))
    assert not probe.process_group
    assert probe.model_type is TinyModel, "no DistributedDataParallel wrapper"
    assert probe.sampler_type is RandomSampler, "the user's sampler, no DistributedSampler"
    assert all(keys == ["exp_avg", "exp_avg_sq", "step"] for keys in probe.state.values())


def test_a_wse_optimizer_keeps_the_state_it_allocated_itself():
    probe = Probe()
    trainer = L.Trainer(strategy="wse", max_steps=1, callbacks=[probe], **QUIET)
    trainer.fit(TinyModel(lambda m: wse.optim.Adam(m.parameters(), lr=0.01)), loader())
    assert trainer.strategy._optimizer_setup == ["Adam: preinitialize()"]
    assert all(probe.state.values()), "every parameter had its state before the first step"


def test_several_devices_resolve_to_lightnings_ddp_machinery():
    trainer = L.Trainer(strategy="wse", accelerator="cpu", devices=2, logger=False)
    strategy = trainer.strategy
    assert isinstance(strategy, WSEStrategy) and isinstance(strategy, DDPStrategy)
    assert strategy.is_multiprocess and strategy.num_processes == 2
    assert type(strategy.launcher).__name__ == "_SubprocessScriptLauncher"


def test_repr_and_startup_line_say_what_is_enforced():
    strategy = WSEStrategy(strict="warn", check="off", verify_steps=5, verify_every=100, compile=True)
    assert repr(strategy) == (
        "WSEStrategy(strict='warn', check='off', verify_steps=5, verify_every=100, compile=True, replay=None)"
    )
    assert repr(WSEStrategy(compile=True, compile_backend="aot_eager")).endswith(
        "compile=True, replay=None, compile_backend='aot_eager')"
    )
    with rank_zero_lines() as lines:
        L.Trainer(strategy=strategy, max_steps=1, **QUIET).fit(TinyModel(), loader())
    # One short line at the start; the full description is at DEBUG level and in describe().
    assert [line for line in lines if line.startswith("wse:")][0] == "wse: 1 process on cpu; check='off': no step is checked."
    line = strategy.describe()
    assert line.startswith("WSEStrategy(strict='warn', check='off'") and "1 process" in line and "SGD: torch layout" in line
    assert "once per optimizer step, inside it" in line and "broken rules warn" in line
    assert "Static-graph device attached: check='off': no step is checked" in line
    assert "unchecked steps run compiled (inductor)" in line


def test_the_full_description_names_the_checks_and_the_schedules_in_the_graph():
    def configure(module):
        optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
        return [optimizer], [LinearLR(optimizer, 0.1, 0.0, 10), torch.optim.lr_scheduler.StepLR(optimizer, 5)]

    with rank_zero_lines() as lines, pytest.warns(StaticGraphWarning, match="torch.optim.lr_scheduler.StepLR"):
        strategy = WSEStrategy(check="warn", verify_steps=2, verify_every=50)
        L.Trainer(strategy=strategy, max_steps=1, **QUIET).fit(TinyModel(configure), loader())
    start = "wse: 1 process on cpu; check='warn': step 1 captured, steps 2-3 verified, then every 50 steps; violations warn once per kind."
    assert start in lines
    line = strategy.describe()
    assert "unchecked steps run eagerly, with nothing installed" in line
    assert "schedules switched to tensor values: LinearLR; host-side: StepLR" in line


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"strict": "maybe"}, ValueError, "`strict` must be one of"),
        ({"check": "loose"}, ValueError, "`check` must be one of"),
        ({"verify_steps": -1}, ValueError, "`verify_steps` must be an integer >= 0"),
        ({"verify_steps": 2.5}, ValueError, "`verify_steps`"),
        ({"verify_every": 0}, ValueError, "`verify_every` must be None"),
        ({"compile": "yes"}, TypeError, "`compile` must be True or False"),
        ({"replay": "graph"}, ValueError, "`replay` must be one of"),
        ({"compile_backend": 3}, TypeError, "`compile_backend` must be a torch.compile backend"),
    ],
)
def test_bad_options_are_refused_at_construction(options, error, match):
    with pytest.raises(error, match=match):
        WSEStrategy(**options)


def test_cuda_graph_replay_needs_a_cuda_device():
    trainer = L.Trainer(strategy=WSEStrategy(replay="cuda_graph"), max_steps=1, **QUIET)
    with pytest.raises(ValueError, match="replay='cuda_graph' needs a CUDA device"):
        trainer.fit(TinyModel(), loader())


class HomeMadeSGD(torch.optim.Optimizer):
    """An optimizer that creates a momentum buffer lazily, as most do."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                buffer = self.state[p].setdefault("buffer", torch.zeros_like(p))
                buffer.mul_(0.9).add_(p.grad)
                p.add_(buffer, alpha=-group["lr"])
        return loss


def test_a_lazy_optimizer_is_refused_before_training():
    trainer = L.Trainer(strategy="wse", max_steps=2, **QUIET)
    module = TinyModel(lambda m: HomeMadeSGD(m.parameters()))
    before = [p.detach().clone() for p in module.parameters()]
    with pytest.raises(LazyOptimizerStateError, match="HomeMadeSGD.*preinitialize\\(\\)"):
        trainer.fit(module, loader())
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters())), "refused before any step"


def test_a_lazy_optimizer_trains_when_told_to_warn():
    trainer = L.Trainer(strategy=WSEStrategy(strict="warn"), max_steps=2, **QUIET)
    with pytest.warns(WSEStrategyWarning, match="HomeMadeSGD"):
        trainer.fit(TinyModel(lambda m: HomeMadeSGD(m.parameters())), loader())
    assert trainer.global_step == 2


def test_validate_outside_fit_runs_on_the_single_device_path():
    class Validated(TinyModel):
        def validation_step(self, batch, batch_idx):
            loss = self.training_step(batch, batch_idx)
            self.log("val_loss", loss)
            return loss

    trainer = L.Trainer(strategy="wse", **QUIET)
    (metrics,) = trainer.validate(Validated(), loader())
    assert "val_loss" in metrics and not torch.distributed.is_initialized()
