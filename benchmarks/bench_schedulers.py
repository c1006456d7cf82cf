"""Per-step cost of stepping a wse scheduler against torch's equivalent and cerebras-pytorch's.

Run by hand: ``python benchmarks/bench_schedulers.py [--steps N] [--rounds R]``.

Each round times ``scheduler.step()`` over N steps for every contender in turn
(interleaved), on an optimizer with a single param group; the ratio is the median
per-step time of wse over the median of the anchor. Targets: <= 1.0 against torch's
class, <= 0.25 against cerebras-pytorch 2.10.0 (run through ``shared/tools/reference.py``
when it is available next to the repository).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from wse.optim import lr_scheduler as L

REFERENCE_TOOL = Path(__file__).resolve().parents[2] / "shared" / "tools"


def cerebras_module():
    """cerebras.pytorch.optim from the reference tool, or None if it cannot be loaded."""
    if not (REFERENCE_TOOL / "reference.py").exists():
        return None
    sys.path.insert(0, str(REFERENCE_TOOL))
    try:
        import reference

        return reference.cerebras_optim()
    except Exception as error:  # the reference is optional: report and go on without it
        print(f"(cerebras-pytorch reference unavailable: {error})")
        return None


def param():
    return [torch.nn.Parameter(torch.zeros(1))]


# name -> (wse factory, torch factory, cerebras factory taking the cerebras module)
CASES = {
    "CosineAnnealingLR": (
        lambda o: L.CosineAnnealingLR(o, 0.1, T_max=1000, eta_min=1e-4),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=1000, eta_min=1e-4),
        lambda cs, o: cs.lr_scheduler.CosineAnnealingLR(o, 0.1, T_max=1000, eta_min=1e-4),
    ),
    "StepLR": (
        lambda o: L.StepLR(o, 0.1, step_size=100, gamma=0.5),
        lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=100, gamma=0.5),
        lambda cs, o: cs.lr_scheduler.StepLR(o, 0.1, step_size=100, gamma=0.5),
    ),
    "ExponentialLR": (
        lambda o: L.ExponentialLR(o, 0.1, total_iters=1, decay_rate=0.999),
        lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.999),
        lambda cs, o: cs.lr_scheduler.ExponentialLR(o, 0.1, total_iters=1, decay_rate=0.999),
    ),
    "PolynomialLR": (
        lambda o: L.PolynomialLR(o, 0.1, 0.0, total_iters=1000, power=2.0),
        lambda o: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=1000, power=2.0),
        lambda cs, o: cs.lr_scheduler.PolynomialLR(o, 0.1, 0.0, total_iters=1000, power=2.0),
    ),
    "MultiStepLR": (
        lambda o: L.MultiStepLR(o, 0.1, gamma=0.5, milestones=[300, 600, 900]),
        lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[300, 600, 900], gamma=0.5),
        lambda cs, o: cs.lr_scheduler.MultiStepLR(o, 0.1, gamma=0.5, milestones=[300, 600, 900]),
    ),
    "CyclicLR": (
        lambda o: L.CyclicLR(o, 0.001, 0.1, step_size_up=100),
        lambda o: torch.optim.lr_scheduler.CyclicLR(o, 0.001, 0.1, step_size_up=100, cycle_momentum=False),
        lambda cs, o: cs.lr_scheduler.CyclicLR(o, 0.001, 0.1, step_size_up=100),
    ),
    "OneCycleLR": (
        lambda o: L.OneCycleLR(o, 0.004, max_lr=0.1, total_steps=100_000),
        lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=100_000, cycle_momentum=False),
        lambda cs, o: cs.lr_scheduler.OneCycleLR(o, 0.004, max_lr=0.1, total_steps=100_000),
    ),
    "SequentialLR (warmup + cosine)": (
        lambda o: L.SequentialLR(o, [L.LinearLR(o, 0.0, 0.1, 100), L.CosineAnnealingLR(o, 0.1, 900)], milestones=[100]),
        lambda o: torch.optim.lr_scheduler.SequentialLR(
            o,
            [torch.optim.lr_scheduler.LinearLR(o, 1e-8, 1.0, 100), torch.optim.lr_scheduler.CosineAnnealingLR(o, 900)],
            milestones=[100],
        ),
        lambda cs, o: cs.lr_scheduler.SequentialLR(
            o, [cs.lr_scheduler.LinearLR(o, 0.0, 0.1, 100), cs.lr_scheduler.CosineAnnealingLR(o, 0.1, 900)], milestones=[100]
        ),
    ),
}


def time_per_step(make_scheduler, steps: int) -> float:
    scheduler = make_scheduler()
    step = scheduler.step
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)

    import warnings

    warnings.simplefilter("ignore")  # torch warns when a scheduler steps without the optimizer
    cs = cerebras_module()
    print(f"{'scheduler':32} {'wse µs':>8} {'torch µs':>9} {'ratio':>6} {'cerebras µs':>12} {'ratio':>6}")
    for name, (ours, theirs, reference) in CASES.items():
        contenders = {
            "wse": lambda: ours(torch.optim.SGD(param(), lr=0.1)),
            "torch": lambda: theirs(torch.optim.SGD(param(), lr=0.1)),
        }
        if cs is not None:
            contenders["cerebras"] = lambda: reference(cs, cs.SGD(param(), lr=0.1))
        times = {key: [] for key in contenders}
        for _ in range(args.rounds):
            for key, make in contenders.items():
                times[key].append(time_per_step(make, args.steps))
        median = {key: statistics.median(values) * 1e6 for key, values in times.items()}
        line = f"{name:32} {median['wse']:8.2f} {median['torch']:9.2f} {median['wse'] / median['torch']:6.2f}"
        if "cerebras" in median:
            line += f" {median['cerebras']:12.2f} {median['wse'] / median['cerebras']:6.3f}"
        print(line)
    print("targets: wse/torch <= 1.0, wse/cerebras <= 0.25")


if __name__ == "__main__":
    main()
