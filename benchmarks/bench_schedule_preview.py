"""Cost of reading a whole schedule at once (``wse schedule``) against stepping the scheduler.

Run by hand: ``python benchmarks/bench_schedule_preview.py [--steps N] [--rounds R]``.

For each config, every round times, in turn (interleaved):

* the anchor: build the scheduler and step it N times, reading the param group each step
  (what a training loop sees);
* ``preview``: build it and evaluate its closed form on a float64 tensor of N steps, as
  ``wse schedule`` does.

The ratio is the median time of ``preview`` over the median of the anchor; target <= 0.1
at 100k steps (a preview of a long schedule must be near-instant).
"""
from __future__ import annotations

import argparse
import statistics
import time

from wse.optim._config_preview import preview_config

CONFIGS = {
    "CosineDecayLR": {"CosineDecayLR": {"initial_learning_rate": 1e-3, "end_learning_rate": 1e-5, "total_iters": 1000}},
    "warmup + cosine": {
        "SequentialLR": [
            {"LinearLR": {"initial_learning_rate": 0.0, "end_learning_rate": 1e-3, "total_iters": 100}},
            {"CosineDecayLR": {"initial_learning_rate": 1e-3, "end_learning_rate": 1e-5, "total_iters": 900}},
        ]
    },
    "Model Zoo list (4 parts)": [
        {"scheduler": "Constant", "val": 0.01, "decay_steps": 50},
        {"scheduler": "Exponential", "learning_rate": 0.01, "decay_steps": 20, "decay_rate": 0.5, "staircase": True},
        {"scheduler": "Polynomial", "learning_rate": 0.0025, "end_learning_rate": 1e-4, "decay_steps": 100, "power": 2},
        {"scheduler": "Exponential", "learning_rate": 1e-4, "decay_steps": 30, "decay_rate": 0.9},
    ],
    "ChainedLR": {
        "ChainedLR": [
            {"CosineDecayLR": {"initial_learning_rate": 0.1, "end_learning_rate": 0.0, "total_iters": 1000}},
            {"StepLR": {"initial_learning_rate": 1.0, "step_size": 100, "gamma": 0.5}},
        ]
    },
}


def stepped(config, steps: int) -> float:
    start = time.perf_counter()
    preview = preview_config(config, steps=1)
    ((key, scheduler),) = preview.schedulers.items()
    group = scheduler.optimizer.param_groups[0]
    values = []
    for _ in range(steps):
        values.append(float(group[key]))
        scheduler.step()
    return time.perf_counter() - start


def previewed(config, steps: int) -> float:
    start = time.perf_counter()
    preview = preview_config(config, steps=steps)
    ((key, _),) = preview.schedulers.items()
    preview.values(key)
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    print(f"{args.steps} steps, median of {args.rounds} interleaved rounds")
    print(f"{'config':28} {'stepping ms':>12} {'preview ms':>11} {'ratio':>7}")
    for name, config in CONFIGS.items():
        times = {"stepping": [], "preview": []}
        for _ in range(args.rounds):
            times["stepping"].append(stepped(config, args.steps))
            times["preview"].append(previewed(config, args.steps))
        anchor = statistics.median(times["stepping"]) * 1e3
        ours = statistics.median(times["preview"]) * 1e3
        print(f"{name:28} {anchor:12.1f} {ours:11.1f} {ours / anchor:7.3f}")
    print("target: preview/stepping <= 0.1")


if __name__ == "__main__":
    main()
