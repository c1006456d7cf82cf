"""Step time of the wse optimizers against torch.optim and cerebras-pytorch, as ratios.

Run by hand: ``python benchmarks/bench_optimizers.py [--steps N] [--rounds R] [--only NAME ...]
[--no-compile]``.

The model is 100 ``Linear(64, 64)`` layers (200 parameter tensors) on the CPU, with
fixed gradients. For each row every round times, in turn (interleaved), ``N`` steps of
each contender on its own copy of the model; the ratio is the median time of wse over the
median of the anchor, with these targets:

* each optimizer against its torch.optim counterpart with ``foreach=True``: <= 1.0;
* AdamW against cerebras-pytorch 2.10.0's AdamW (``/work/shared/tools/reference.py``;
  the row is skipped when it is not available): <= 0.5;
* AdamW's step compiled with ``torch.compile`` (learning rate and weight decay as 0-d
  tensors, as a scheduler in tensor mode writes them) against
  ``torch.optim.AdamW(fused=True)``: <= 1.0.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional

import torch

import wse.optim

LAYERS = 100
WIDTH = 64


def model_params(seed: int = 0) -> List[torch.nn.Parameter]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(*[torch.nn.Linear(WIDTH, WIDTH) for _ in range(LAYERS)])
    params = list(model.parameters())
    for p in params:
        p.grad = torch.randn_like(p) * 1e-2
    return params


# name -> (wse factory, torch factory); each factory takes the parameters.
ROWS: Dict[str, tuple] = {
    "AdamW": (
        lambda ps: wse.optim.AdamW(ps, lr=1e-3, weight_decay=0.01),
        lambda ps: torch.optim.AdamW(ps, lr=1e-3, weight_decay=0.01, foreach=True),
    ),
    "SGD (momentum)": (
        lambda ps: wse.optim.SGD(ps, lr=1e-2, momentum=0.9),
        lambda ps: torch.optim.SGD(ps, lr=1e-2, momentum=0.9, foreach=True),
    ),
    "Adam": (
        lambda ps: wse.optim.Adam(ps, lr=1e-3),
        lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=True),
    ),
    "Adagrad": (
        lambda ps: wse.optim.Adagrad(ps, lr=1e-2),
        lambda ps: torch.optim.Adagrad(ps, lr=1e-2, foreach=True),
    ),
    "RMSprop": (
        lambda ps: wse.optim.RMSprop(ps, lr=1e-3),
        lambda ps: torch.optim.RMSprop(ps, lr=1e-3, foreach=True),
    ),
    "Adamax": (
        lambda ps: wse.optim.Adamax(ps, lr=1e-3),
        lambda ps: torch.optim.Adamax(ps, lr=1e-3, foreach=True),
    ),
    "NAdam": (
        lambda ps: wse.optim.NAdam(ps, lr=1e-3),
        lambda ps: torch.optim.NAdam(ps, lr=1e-3, foreach=True),
    ),
    "RAdam": (
        lambda ps: wse.optim.RAdam(ps, lr=1e-3),
        lambda ps: torch.optim.RAdam(ps, lr=1e-3, foreach=True),
    ),
    "Adadelta": (
        lambda ps: wse.optim.Adadelta(ps),
        lambda ps: torch.optim.Adadelta(ps, foreach=True),
    ),
    "Rprop": (
        lambda ps: wse.optim.Rprop(ps, lr=1e-3),
        lambda ps: torch.optim.Rprop(ps, lr=1e-3, foreach=True),
    ),
    "ASGD": (
        lambda ps: wse.optim.ASGD(ps, lr=1e-2),
        lambda ps: torch.optim.ASGD(ps, lr=1e-2, foreach=True),
    ),
}


def time_steps(step: Callable[[], None], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


def compare(contenders: Dict[str, Callable[[], None]], steps: int, rounds: int) -> Dict[str, float]:
    """Median seconds per step of each contender, timed in interleaved rounds after a warm-up."""
    for step in contenders.values():
        time_steps(step, 3)
    times = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, step in contenders.items():
            times[name].append(time_steps(step, steps) / steps)
    return {name: statistics.median(values) for name, values in times.items()}


def reference_adamw() -> Optional[Callable]:
    try:
        sys.path.insert(0, "/work/shared/tools")
        import reference  # noqa: E402

        return reference.cerebras_optim().AdamW
    except Exception as error:  # the reference is optional
        print(f"cerebras-pytorch reference unavailable ({error}); skipping that row")
        return None


def compiled_adamw_step(params) -> Callable[[], None]:
    """AdamW's step under torch.compile, reading tensor lr/wd that change in place every step."""
    optimizer = wse.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    lr = torch.tensor(1e-3)
    weight_decay = torch.tensor(0.01)
    for group in optimizer.param_groups:
        group["lr"] = lr
        group["weight_decay"] = weight_decay

    @torch.compile(fullgraph=True)
    def step():
        optimizer.step()

    def stepped():
        lr.mul_(0.9999)  # what a scheduler in tensor mode does between steps
        step()

    start = time.perf_counter()
    stepped()
    print(f"compiled AdamW: first call (compilation) took {time.perf_counter() - start:.1f} s")
    # The machine stays busy for a moment after compiling (the compile workers wind down).
    settle = time.perf_counter()
    while time.perf_counter() - settle < 3.0:
        stepped()
    return stepped


def fused_adamw_step(params) -> Callable[[], None]:
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, fused=True)
    return optimizer.step


def row(label: str, ours: float, anchor: float, target: float, anchor_name: str) -> str:
    ratio = ours / anchor
    verdict = "ok" if ratio <= target else "OVER"
    return (
        f"{label:34} {anchor_name:32} {ours * 1e3:9.3f} {anchor * 1e3:10.3f} {ratio:7.3f} {target:7.2f}  {verdict}"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="steps per timing")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (the median is kept)")
    parser.add_argument("--only", nargs="*", help="row names to run (default: all)")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled row (its compilation is slow)")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)

    print(f"{LAYERS} x Linear({WIDTH}, {WIDTH}) = {2 * LAYERS} parameter tensors, CPU, {torch.get_num_threads()} threads")
    print(f"median of {args.rounds} interleaved rounds of {args.steps} steps")
    lines = []
    wanted = lambda name: not args.only or name in args.only  # noqa: E731
    for name, (ours, theirs) in ROWS.items():
        if not wanted(name):
            continue
        medians = compare(
            {"wse": ours(model_params()).step, "torch": theirs(model_params()).step}, args.steps, args.rounds
        )
        lines.append(row(f"{name}", medians["wse"], medians["torch"], 1.0, "torch.optim (foreach=True)"))

    if wanted("AdamW vs cerebras"):
        reference = reference_adamw()
        if reference is not None:
            medians = compare(
                {
                    "wse": wse.optim.AdamW(model_params(), lr=1e-3, weight_decay=0.01).step,
                    "cerebras": reference(model_params(), lr=1e-3, weight_decay=0.01).step,
                },
                args.steps,
                args.rounds,
            )
            lines.append(row("AdamW", medians["wse"], medians["cerebras"], 0.5, "cerebras-pytorch 2.10.0"))

    if wanted("compiled AdamW") and not args.no_compile:
        medians = compare(
            {"wse": compiled_adamw_step(model_params()), "torch": fused_adamw_step(model_params())},
            args.steps,
            args.rounds,
        )
        lines.append(row("AdamW, compiled, tensor lr", medians["wse"], medians["torch"], 1.0, "torch.optim (fused=True)"))

    print()
    print(f"{'wse':34} {'anchor':32} {'wse ms':>9} {'anchor ms':>10} {'ratio':>7} {'target':>7}")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
