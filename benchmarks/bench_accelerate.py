"""The step time of an Accelerate loop under ``wse.accelerate.prepare`` against the plain Accelerate loop.

Run by hand: ``python benchmarks/bench_accelerate.py [--model mlp|wide-mlp] [--rounds R]
[--steps N] [--threads T] [--no-compile]``.

The same loop (forward, MSE loss, ``accelerator.backward``, torch AdamW, a cosine LR
schedule, ``zero_grad``) over a prepared DataLoader on the CPU, from the same initial
weights, prepared four ways in the same process:

* plain Accelerate: ``accelerator.prepare(model, optimizer, loader, scheduler)`` (the anchor);
* plain Accelerate, tensor-valued schedule: the same with ``scheduler.enable_tensor_values()``,
  the schedule a static-graph device needs (what wse switches on when it checks or
  compiles): separates the price of in-graph schedules from the price of the integration;
* verified, checks off: ``wse.accelerate.prepare(...)`` after its verification window
  (steps 1-4), the schedule tensor-valued (goal: <= 1.05);
* check="off": ``wse.accelerate.prepare(..., check="off")``, nothing installed (goal: <= 1.05);
* compile=True: after verification and the warm-up that compiles the forward and the
  update.

Each round runs one epoch of ``--steps`` batches per variant, in rotating order, after a
warm-up epoch; the table shows each variant's median step time and the median over rounds
of its ratio to the anchor in the same round.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, TensorDataset

import wse.accelerate
from wse.optim.lr_scheduler import CosineDecayLR


def make_model(kind: str):
    torch.manual_seed(0)
    inputs, width = (256, 1024) if kind == "wide-mlp" else (64, 256)
    model = torch.nn.Sequential(
        torch.nn.Linear(inputs, width), torch.nn.GELU(), torch.nn.Linear(width, width), torch.nn.GELU(), torch.nn.Linear(width, 1)
    )
    return model, inputs


class Variant:
    """One way of preparing the loop; ``epoch()`` runs one pass over its loader and returns s/step."""

    def __init__(self, name: str, kind: str, steps: int, wse_options=None, tensor_schedule=False):
        self.name, self.times = name, []
        self.accelerator = Accelerator(cpu=True)
        model, inputs = make_model(kind)
        generator = torch.Generator().manual_seed(1)
        data = TensorDataset(torch.randn(32 * steps, inputs, generator=generator), torch.randn(32 * steps, 1, generator=generator))
        loader = DataLoader(data, batch_size=32, drop_last=True)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
        scheduler = CosineDecayLR(optimizer, 1e-3, 1e-5, total_iters=10**6)
        if tensor_schedule:
            scheduler.enable_tensor_values(dtype=torch.float64)
        if wse_options is None:
            prepared = self.accelerator.prepare(model, optimizer, loader, scheduler)
        else:
            prepared = wse.accelerate.prepare(self.accelerator, model, optimizer, loader, scheduler, **wse_options)
        self.model, self.optimizer, self.loader, self.scheduler = prepared
        self.run = wse.accelerate.state(self.accelerator) if wse_options is not None else None

    def epoch(self) -> float:
        model, optimizer, scheduler, accelerator = self.model, self.optimizer, self.scheduler, self.accelerator
        start = time.perf_counter()
        count = 0
        for x, y in self.loader:
            loss = torch.nn.functional.mse_loss(model(x), y)
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            count += 1
        return (time.perf_counter() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("mlp", "wide-mlp"), default="mlp")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=100, help="batches per epoch (one timed block)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-compile", action="store_true", help="leave out the compile=True variant")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")

    variants = [
        Variant("plain Accelerate", args.model, args.steps),
        Variant("plain Accelerate, tensor-valued LR", args.model, args.steps, tensor_schedule=True),
        Variant("wse, verified, checks off", args.model, args.steps, {}),
        Variant('wse, check="off"', args.model, args.steps, {"check": "off"}),
    ]
    if not args.no_compile:
        variants.append(Variant("wse, compile=True, after warm-up", args.model, args.steps, {"compile": True}))
    for variant in variants:  # capture, verification, compilation, allocator and caches
        variant.epoch()
    for round_index in range(args.rounds):
        shift = round_index % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            variant.times.append(variant.epoch())

    anchor = variants[0].times
    print(
        f"Accelerate loop, model: {args.model}, batch 32, AdamW + CosineDecayLR, CPU, {args.threads} thread(s), "
        f"{args.rounds} rounds x {args.steps} steps"
    )
    print(f"{'variant':36} {'ms/step':>9} {'ratio to plain Accelerate':>27}")
    for variant in variants:
        ratio = statistics.median(t / a for t, a in zip(variant.times, anchor))
        goal = "   (goal <= 1.05)" if variant.name.startswith("wse") and "check" in variant.name else ""
        print(f"{variant.name:36} {statistics.median(variant.times) * 1e3:9.3f} {ratio:27.3f}{goal}")
    for variant in variants:
        if variant.run is None:
            continue
        report = variant.run.device.report()
        if report.compile_seconds is not None:
            print(
                f"one-time: compile {report.compile_seconds:.2f} s ({report.compiled_graphs} graphs, "
                f"{report.recompilations} recompilations)"
            )
        elif report.capture_seconds is not None and variant.name.startswith("wse, verified"):
            print(f"one-time: capture {report.capture_seconds * 1e3:.1f} ms, {report.steps_verified} steps verified")


if __name__ == "__main__":
    main()
