"""One warmup-stable run, a finished model at every checkpoint: WSD checkpoint decay with branches.

    python examples/wsd_checkpoints.py                     # 3 checkpoints over 400 steps, about 20 s on a CPU
    python examples/wsd_checkpoints.py --checkpoints 2 --steps 200 --save-dir wsd-out
    python examples/wsd_checkpoints.py --strategy wse      # every step, branches included, checked by wse's device

A small MLP learns a noisy nonlinear function under pytorch-accelerated's
``WSDLrScheduler`` (``wse.compat.pytorch_accelerated``), with checkpoints spaced
geometrically (each twice the previous). ``WSDCheckpointCallback(branch=True)`` keeps
the run on its stable learning rate; at each checkpoint's pre-decay step it forks a
branch that runs the decay on the data that follows, saves the decayed model as
``checkpoint_{step}_wsd_post_decay.pt`` and hands the run back untouched. The script
prints the files written and, for every checkpoint, the validation loss of the decayed
model beside that of the run (which never decays) at the same step.
"""
import argparse
import logging
import tempfile
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from wse.callbacks import WSDCheckpointCallback
from wse.compat.pytorch_accelerated import WSDLrScheduler


def make_data(samples: int, seed: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(samples, 2, generator=generator) * 4 - 2
    y = torch.sin(2 * x[:, :1]) * torch.cos(x[:, 1:]) + 0.1 * torch.randn(samples, 1, generator=generator)
    return TensorDataset(x, y)


class Regressor(L.LightningModule):
    def __init__(self, steps: int, checkpoints: int, lr: float = 0.03):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.GELU(), torch.nn.Linear(64, 64),
                                       torch.nn.GELU(), torch.nn.Linear(64, 1))
        self.steps, self.checkpoints, self.lr = steps, checkpoints, lr

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr)
        scheduler = WSDLrScheduler(optimizer, total_steps=self.steps, num_warmup_steps=self.steps // 20,
                                   decay_phase_ratio=0.2, num_checkpoints=self.checkpoints)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def lr_scheduler_step(self, scheduler, metric):
        scheduler.step()  # pytorch-accelerated's schedulers step without arguments


@torch.no_grad()
def validation_loss(net: torch.nn.Module, data: TensorDataset) -> float:
    x, y = data.tensors
    return torch.nn.functional.mse_loss(net(x), y).item()


class RunLossAtCheckpoints(L.Callback):
    """The run's own validation loss when it reaches each checkpoint step."""

    def __init__(self, steps, data):
        self.steps, self.data, self.losses = set(steps), data, {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step in self.steps:
            pl_module.eval()
            self.losses[trainer.global_step] = validation_loss(pl_module.net, self.data)
            pl_module.train()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--checkpoints", type=int, default=3)
    parser.add_argument("--save-dir", type=Path, default=None, help="default: a temporary directory")
    parser.add_argument("--strategy", choices=("auto", "wse"), default="auto",
                        help="'wse': Trainer(strategy='wse'), whose device checks the branches' steps too")
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    L.seed_everything(0, verbose=False)

    save_dir = args.save_dir or Path(tempfile.mkdtemp(prefix="wsd-"))
    train, validation = make_data(2048, seed=0), make_data(512, seed=1)
    model = Regressor(args.steps, args.checkpoints)
    wsd = WSDCheckpointCallback(save_dir=save_dir, branch=True)
    checkpoint_steps = WSDLrScheduler(torch.optim.SGD(model.parameters(), lr=model.lr), total_steps=args.steps,
                                      num_checkpoints=args.checkpoints).get_checkpoint_steps()
    run_losses = RunLossAtCheckpoints(checkpoint_steps, validation)
    trainer = L.Trainer(max_steps=args.steps, callbacks=[wsd, run_losses], accelerator="cpu", devices=1, logger=False,
                        strategy=args.strategy, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(model, DataLoader(train, batch_size=64, shuffle=True))

    print(f"wrote to {save_dir}:")
    for path in sorted(wsd.written, key=lambda path: int(path.name.split("_")[1])):
        print(f"  {path.name}")
    print(f"\n{'step':>6}  {'decayed (branch)':>16}  {'run (stable lr)':>15}")
    for step in checkpoint_steps:
        checkpoint = torch.load(save_dir / f"checkpoint_{step}_wsd_post_decay.pt", weights_only=True)
        decayed = Regressor(args.steps, args.checkpoints)
        decayed.load_state_dict(checkpoint["model_state_dict"])
        decayed.eval()
        print(f"{step:>6}  {validation_loss(decayed.net, validation):>16.5f}  {run_losses.losses[step]:>15.5f}")
    print(f"\nthe run ends at lr {trainer.optimizers[0].param_groups[0]['lr']:g}: it never decayed; "
          f"the branches took {sum(p.decay_steps for p in trainer.lr_scheduler_configs[0].scheduler.decay_periods())} "
          f"decay steps on top of its {args.steps}.")
    if args.strategy == "wse":
        print(trainer.strategy.device.summary(), "(the run's steps; the branches' were checked as the same steps)")


if __name__ == "__main__":
    main()
