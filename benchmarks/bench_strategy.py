"""Time per training step of ``Trainer(strategy="wse")`` over Lightning's default strategy.

    python benchmarks/bench_strategy.py [--rounds 7] [--steps 150]

Same model, data, optimizer and schedulers under both strategies, with the static-graph
checks off (``check="off"``). A callback times each step from ``on_train_batch_start``
to ``on_train_batch_end`` (forward, backward, optimizer step, scheduler steps); the first
steps of every fit are warm-up and are not counted. The contenders alternate, round
after round, and the table shows medians. Target: ratio <= 1.05.
"""
import argparse
import logging
import statistics
import warnings

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

import wse
from _lightning_timing import median_step_time
from wse.optim.lr_scheduler import CosineDecayLR, LinearLR, SequentialLR
from wse.optim.weight_decay_scheduler import CosineDecayWD

WARMUP = 20


class MLP(L.LightningModule):
    def __init__(self, optimizer_class, total_steps: int, width: int = 256, depth: int = 4):
        super().__init__()
        torch.manual_seed(0)
        layers = [torch.nn.Linear(64, width), torch.nn.GELU()]
        for _ in range(depth - 1):
            layers += [torch.nn.Linear(width, width), torch.nn.GELU()]
        self.net = torch.nn.Sequential(*layers, torch.nn.Linear(width, 10))
        self.optimizer_class, self.total_steps = optimizer_class, total_steps

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        optimizer = self.optimizer_class(self.parameters(), lr=1e-3, weight_decay=0.1)
        warmup = self.total_steps // 10
        lr = SequentialLR(
            optimizer,
            [LinearLR(optimizer, 0.0, 1e-3, warmup), CosineDecayLR(optimizer, 1e-3, 1e-5, self.total_steps - warmup)],
            milestones=[warmup],
        )
        wd = CosineDecayWD(optimizer, 0.1, 0.01, self.total_steps)
        return [optimizer], [{"scheduler": lr, "interval": "step"}, {"scheduler": wd, "interval": "step"}]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    data = DataLoader(
        TensorDataset(torch.randn(4096, 64, generator=generator), torch.randint(0, 10, (4096,), generator=generator)),
        batch_size=64,
    )
    optimizers = [("torch.optim.AdamW", torch.optim.AdamW)]
    if hasattr(wse.optim, "AdamW"):
        optimizers.append(("wse.optim.AdamW", wse.optim.AdamW))
    # Lightning's start-up lines and warnings, once per fit, would bury the table.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    rows = []
    for name, optimizer_class in optimizers:
        times = {"auto": [], "wse": []}
        for round_index in range(args.rounds):
            order = ["auto", "wse"] if round_index % 2 == 0 else ["wse", "auto"]
            for contender in order:
                strategy = "auto" if contender == "auto" else wse.WSEStrategy(check="off")
                times[contender].append(median_step_time(strategy, MLP(optimizer_class, args.steps), data, args.steps, WARMUP))
        default, ours = statistics.median(times["auto"]), statistics.median(times["wse"])
        rows.append((name, default, ours))

    print(f"\nper-step time, median of {args.rounds} interleaved rounds of {args.steps} steps ({WARMUP} warm-up)")
    print(f"{'optimizer':<20} {'default (ms)':>13} {'wse (ms)':>10} {'ratio wse/default':>18}  target")
    for name, default, ours in rows:
        print(f"{name:<20} {default * 1e3:>13.3f} {ours * 1e3:>10.3f} {ours / default:>18.3f}  <= 1.05")


if __name__ == "__main__":
    main()
