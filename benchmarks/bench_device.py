"""The price of checking a step, and what the device costs or gains once the step is verified.

Run by hand: ``python benchmarks/bench_device.py [--model mlp|transformer] [--rounds R]
[--steps N] [--threads T]``.

One training step (forward, backward, torch AdamW, a tensor-valued wse LR schedule) on a
small MLP (default) or transformer block on the CPU, run five ways from the same initial
weights:

* eager: the plain PyTorch loop, the anchor;
* verifying: every step captured/verified by the device (the price of checking);
* verified, checks off: ``with device.step(batch):`` after the verification window
  (goal: <= 1.05 times eager);
* check="off": the device with checking disabled;
* compile=True: ``device.wrap(step)`` after verification and warm-up (goal: >= 1.3 times
  faster than eager).

Rounds are interleaved (each round runs N steps of every variant, in rotating order) and
the table shows the median per-step time of each variant and its ratio to eager in the
same round. The one-time capture and compile costs are printed below it.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from wse.device import Device
from wse.optim.lr_scheduler import CosineDecayLR

BATCH, SEQUENCE, WIDTH, HEADS = 8, 32, 64, 4


class Block(torch.nn.Module):
    """A pre-norm transformer block and a linear head."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.TransformerEncoderLayer(WIDTH, HEADS, 4 * WIDTH, dropout=0.0, batch_first=True, norm_first=True)
        self.head = torch.nn.Linear(WIDTH, 1)

    def forward(self, x):
        return self.head(self.layer(x))


def build(kind: str):
    torch.manual_seed(0)
    if kind == "transformer":
        model = Block()
        x = torch.randn(BATCH, SEQUENCE, WIDTH)
    else:
        model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.GELU(), torch.nn.Linear(256, 256), torch.nn.GELU(), torch.nn.Linear(256, 1))
        x = torch.randn(32, 64)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    scheduler = CosineDecayLR(optimizer, 1e-3, 1e-5, total_iters=100_000).enable_tensor_values()

    def train_step(batch):
        loss = model(batch).pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
        return loss.detach()

    return model, optimizer, scheduler, train_step, x


class Variant:
    """A way of running the step: ``run(batch)`` performs one training step."""

    def __init__(self, name: str, kind: str, make):
        self.name = name
        model, optimizer, scheduler, train_step, self.batch = build(kind)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("mlp", "transformer"), default="mlp")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=50, help="steps per variant per round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=20, help="steps of each variant before timing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    variants = [
        Variant("eager (plain PyTorch loop)", args.model, eager),
        Variant("verifying (every step checked)", args.model, in_device(verify_steps=10**9)),
        Variant("verified, checks off", args.model, in_device(verify_steps=3)),
        Variant('check="off"', args.model, in_device(check="off")),
        Variant("compile=True, after warm-up", args.model, compiled),
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

    anchor = variants[0].times
    print(f"model: {args.model}, AdamW + tensor-valued CosineDecayLR, CPU, {args.threads} thread(s), "
          f"{args.rounds} rounds x {args.steps} steps")
    print(f"{'variant':34} {'ms/step':>9} {'ratio to eager':>15}")
    for variant in variants:
        ratio = statistics.median(t / a for t, a in zip(variant.times, anchor))
        goal = ""
        if variant.name.startswith("verified"):
            goal = "  (goal <= 1.05)"
        elif variant.name.startswith("compile"):
            goal = f"  ({1 / ratio:.2f}x faster; goal >= 1.3x)"
        print(f"{variant.name:34} {statistics.median(variant.times) * 1e3:9.3f} {ratio:15.3f}{goal}")

    eager_step = statistics.median(anchor)
    verified = variants[2].device.report()
    compiled_report = variants[4].device.report()
    print(
        f"one-time: capture {verified.capture_seconds * 1e3:.1f} ms ({verified.capture_seconds / eager_step:.0f} eager steps, "
        f"{verified.graph_ops} operations); compile {compiled_report.compile_seconds:.1f} s "
        f"({compiled_report.compiled_graphs} graphs, {compiled_report.recompilations} recompilation(s))"
    )


if __name__ == "__main__":
    main()
