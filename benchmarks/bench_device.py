"""The price of checking a step, and what the device costs or gains once the step is verified.

Run by hand: ``python benchmarks/bench_device.py [--part lightning|loop|both]
[--model mlp|wide-mlp|transformer] [--rounds R] [--steps N] [--threads T] [--log]``.

One training step (forward, backward, torch AdamW, a tensor-valued wse LR schedule) on the
CPU, on a small MLP (64-256-256-1, batch 32; default), a wider one (256-1024-1024-1) or a
pre-norm transformer block (width 64, 4 heads, sequence 32, batch 8), from the same
initial weights, timed several ways in the same run.

Under Lightning (``--part lightning``, the default), the anchor is Lightning's default
strategy with the same LightningModule, data, optimizer and schedule, against
``Trainer(strategy=WSEStrategy(...))``:

* verifying: every step captured/verified (``verify_steps`` unbounded): the price of checking;
* verified, checks off: the default strategy after its verification window (goal: <= 1.05);
* check="off": the device attached with checking disabled;
* compile=True: after verification and warm-up (goal: >= 1.3 times faster than eager).

A callback times each step from ``on_train_batch_start`` to ``on_train_batch_end``; each
round runs one fit per variant (in rotating order) and takes the median step after the
warm-up steps (which hold the capture, the verification window and the compilation).

In a plain PyTorch loop (``--part loop``) the anchor is the loop itself, against
``with device.step(batch):`` (verifying, verified, check="off") and ``device.wrap(step)``
with ``compile=True``; rounds interleave the variants step block by step block.

The table shows each variant's median step time and its median ratio to the anchor in the
same round; the one-time capture and compile costs are printed below it.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from _lightning_timing import median_step_time

from wse.device import Device
from wse.lightning import WSEStrategy
from wse.optim.lr_scheduler import CosineDecayLR

SEQUENCE, WIDTH, HEADS = 32, 64, 4


class Block(torch.nn.Module):
    """A pre-norm transformer block and a linear head."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.TransformerEncoderLayer(WIDTH, HEADS, 4 * WIDTH, dropout=0.0, batch_first=True, norm_first=True)
        self.head = torch.nn.Linear(WIDTH, 1)

    def forward(self, x):
        return self.head(self.layer(x))


def mlp(inputs: int, width: int) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(inputs, width), torch.nn.GELU(), torch.nn.Linear(width, width), torch.nn.GELU(), torch.nn.Linear(width, 1)
    )


def make_model(kind: str):
    """A model and the shape of one batch (the same initial weights every time)."""
    torch.manual_seed(0)
    if kind == "transformer":
        return Block(), (8, SEQUENCE, WIDTH)
    if kind == "wide-mlp":
        return mlp(256, 1024), (32, 256)
    return mlp(64, 256), (32, 64)


def make_optimizer(model: torch.nn.Module):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    scheduler = CosineDecayLR(optimizer, 1e-3, 1e-5, total_iters=100_000).enable_tensor_values()
    return optimizer, scheduler


def median_ratio(times, anchor) -> float:
    return statistics.median(t / a for t, a in zip(times, anchor))


def print_table(title: str, anchor_name: str, rows, goals) -> None:
    print(title)
    print(f"{'variant':36} {'ms/step':>9} {'ratio to ' + anchor_name:>22}")
    anchor = rows[0][1]
    for name, times in rows:
        ratio = median_ratio(times, anchor)
        goal = goals(name, ratio)
        print(f"{name:36} {statistics.median(times) * 1e3:9.3f} {ratio:22.3f}{goal}")


def goal_note(name: str, ratio: float) -> str:
    if name.startswith("verified"):
        return "  (goal <= 1.05)"
    if name.startswith("compile"):
        return f"  ({1 / ratio:.2f}x faster; goal >= 1.3x)"
    return ""


def one_time_costs(capture_report, compile_report, eager_step: float) -> str:
    capture = capture_report.capture_seconds
    text = (
        f"one-time: capture {capture * 1e3:.1f} ms ({capture / eager_step:.0f} eager steps, "
        f"{capture_report.graph_ops} operations)"
    )
    if compile_report.compile_seconds is not None:
        text += (
            f"; compile {compile_report.compile_seconds:.1f} s ({compile_report.compiled_graphs} graphs, "
            f"{compile_report.recompilations} recompilation(s))"
        )
    return text


# -- under Lightning --------------------------------------------------------------------------


class Model(L.LightningModule):
    def __init__(self, kind: str, log: bool):
        super().__init__()
        self.net, _ = make_model(kind)
        self.log_loss = log

    def training_step(self, batch, batch_idx):
        (x,) = batch
        loss = self.net(x).pow(2).mean()
        if self.log_loss:
            self.log("train_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        optimizer, scheduler = make_optimizer(self)
        return [optimizer], [{"scheduler": scheduler, "interval": "step"}]


LIGHTNING_VARIANTS = [
    ("eager Lightning (default strategy)", lambda: "auto"),
    ("verifying (every step checked)", lambda: WSEStrategy(verify_steps=10**9)),
    ("verified, checks off", lambda: WSEStrategy()),
    ('check="off"', lambda: WSEStrategy(check="off")),
    ("compile=True, after warm-up", lambda: WSEStrategy(compile=True)),
]


def lightning_part(args) -> None:
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    _, shape = make_model(args.model)
    generator = torch.Generator().manual_seed(0)
    batches = args.warmup + args.steps
    data = DataLoader(TensorDataset(torch.randn(batches * shape[0], *shape[1:], generator=generator)), batch_size=shape[0])
    times = {name: [] for name, _ in LIGHTNING_VARIANTS}
    strategies = {}
    for round_index in range(args.rounds):
        shift = round_index % len(LIGHTNING_VARIANTS)
        for name, make in LIGHTNING_VARIANTS[shift:] + LIGHTNING_VARIANTS[:shift]:
            strategy = make()
            times[name].append(median_step_time(strategy, Model(args.model, args.log), data, batches, args.warmup))
            # The first fit's costs are the one-time ones: later fits reuse in-process caches.
            strategies.setdefault(name, strategy)
    rows = [(name, times[name]) for name, _ in LIGHTNING_VARIANTS]
    print_table(
        f"Lightning, model: {args.model}, AdamW + tensor-valued CosineDecayLR, CPU, {args.threads} thread(s), "
        f"{'logging the loss, ' if args.log else ''}{args.rounds} rounds x {args.steps} steps ({args.warmup} warm-up)",
        "eager Lightning",
        rows,
        goal_note,
    )
    capture = strategies["verified, checks off"].device.report()
    compiled = strategies["compile=True, after warm-up"].device.report()
    print(one_time_costs(capture, compiled, statistics.median(rows[0][1])))


# -- in a plain loop --------------------------------------------------------------------------


class LoopVariant:
    """A way of running the step in a plain loop: ``run(batch)`` performs one training step."""

    def __init__(self, name: str, kind: str, make):
        self.name = name
        model, shape = make_model(kind)
        optimizer, scheduler = make_optimizer(model)
        self.batch = torch.randn(*shape, generator=torch.Generator().manual_seed(0))

        def train_step(batch):
            loss = model(batch).pow(2).mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            scheduler.step()
            return loss.detach()

        self.device, self.run = make(model, optimizer, scheduler, train_step)
        self.times = []


def eager(model, optimizer, scheduler, train_step):
    return None, train_step


def in_device(**options):
    def make(model, optimizer, scheduler, train_step):
        device = Device(model, optimizer, scheduler, **options)

        def run(batch):
            with device.step(batch):
                return train_step(batch)

        return device, run

    return make


def compiled(model, optimizer, scheduler, train_step):
    device = Device(model, optimizer, scheduler, compile=True)
    return device, device.wrap(train_step)


def loop_part(args) -> None:
    variants = [
        LoopVariant("eager (plain PyTorch loop)", args.model, eager),
        LoopVariant("verifying (every step checked)", args.model, in_device(verify_steps=10**9)),
        LoopVariant("verified, checks off", args.model, in_device(verify_steps=3)),
        LoopVariant('check="off"', args.model, in_device(check="off")),
        LoopVariant("compile=True, after warm-up", args.model, compiled),
    ]
    # Warm-up: capture, verification window, compilation, allocator and caches.
    for variant in variants:
        for _ in range(args.warmup):
            variant.run(variant.batch)
    for round_index in range(args.rounds):
        shift = round_index % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            start = time.perf_counter()
            for _ in range(args.steps):
                variant.run(variant.batch)
            variant.times.append((time.perf_counter() - start) / args.steps)
    print_table(
        f"plain loop, model: {args.model}, AdamW + tensor-valued CosineDecayLR, CPU, {args.threads} thread(s), "
        f"{args.rounds} rounds x {args.steps} steps",
        "eager",
        [(variant.name, variant.times) for variant in variants],
        goal_note,
    )
    print(one_time_costs(variants[2].device.report(), variants[4].device.report(), statistics.median(variants[0].times)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("lightning", "loop", "both"), default="lightning")
    parser.add_argument("--model", choices=("mlp", "wide-mlp", "transformer"), default="mlp")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100, help="timed steps per variant per round")
    parser.add_argument("--warmup", type=int, default=20, help="steps of each variant before timing")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log", action="store_true", help="the LightningModule logs its loss with self.log")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # The compiled step's one-time notices and Lightning's start-up lines would bury the table.
    warnings.filterwarnings("ignore")
    logging.getLogger("torch._logging").setLevel(logging.ERROR)
    if args.part in ("lightning", "both"):
        lightning_part(args)
    if args.part == "both":
        print()
    if args.part in ("loop", "both"):
        loop_part(args)


if __name__ == "__main__":
    main()
