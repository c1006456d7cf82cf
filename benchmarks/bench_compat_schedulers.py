"""Per-step cost of wse.compat's schedulers against pytorch-accelerated's and Megatron-Core's.

Run by hand: ``python benchmarks/bench_compat_schedulers.py [--steps N] [--rounds R]``.

Each round times N calls of ``step()`` for wse and for the published implementation in
turn (interleaved), on an optimizer with three param groups; the ratio is wse's median
per-step time over the published one's. The published implementations come from
``shared/tools/reference.py`` next to the repository; without it there is no anchor and
the benchmark says so.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from wse.compat import megatron, pytorch_accelerated

REFERENCE_TOOL = Path(__file__).resolve().parents[2] / "shared" / "tools"

MEGATRON_SETTINGS = dict(
    init_lr=0.0, max_lr=1e-3, min_lr=1e-5, lr_warmup_steps=100, lr_decay_steps=5000, start_wd=0.01, end_wd=0.1,
    wd_incr_steps=5000, wd_incr_style="cosine",
)

# name -> (module attribute path, kwargs, step argument tuple)
CASES = {
    "CosineLrScheduler": ("pa", "CosineLrScheduler", dict(total_num_epochs=50, num_update_steps_per_epoch=100, num_warmup_epochs=2, num_cooldown_epochs=2), ()),
    "WSDLrScheduler": ("pa", "WSDLrScheduler", dict(total_steps=5000, num_warmup_steps=100, num_checkpoints=3), ()),
    "OptimizerParamScheduler cosine": ("megatron", "OptimizerParamScheduler", dict(MEGATRON_SETTINGS, lr_decay_style="cosine"), (1,)),
    "OptimizerParamScheduler WSD": ("megatron", "OptimizerParamScheduler", dict(MEGATRON_SETTINGS, lr_decay_style="WSD", wsd_decay_steps=1000, lr_wsd_decay_style="exponential"), (1,)),
}


def published():
    """{'pa': module, 'megatron': namespace} from the reference tool, or None."""
    if not (REFERENCE_TOOL / "reference.py").exists():
        return None
    sys.path.insert(0, str(REFERENCE_TOOL))
    try:
        import reference

        return {"pa": reference.pa_schedulers(), "megatron": type("M", (), {"OptimizerParamScheduler": reference.megatron_scheduler()})}
    except Exception as error:  # the anchor is optional: report and go on without it
        print(f"(published implementations unavailable: {error})")
        return None


def optimizer():
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in (0.01, 0.002, 0.3)]
    return torch.optim.SGD(groups, lr=0.1)


def per_step_seconds(factory, args, steps):
    scheduler = factory(optimizer())
    start = time.perf_counter()
    for _ in range(steps):
        scheduler.step(*args)
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    anchors = published()
    ours = {"pa": pytorch_accelerated, "megatron": megatron}
    print(f"{'scheduler':34} {'wse us/step':>12} {'published us/step':>18} {'ratio':>7}")
    for name, (family, cls, kwargs, args) in CASES.items():
        mine, theirs = [], []
        for _ in range(options.rounds):
            mine.append(per_step_seconds(lambda o: getattr(ours[family], cls)(o, **kwargs), args, options.steps))
            if anchors is not None:
                theirs.append(per_step_seconds(lambda o: getattr(anchors[family], cls)(o, **kwargs), args, options.steps))
        ours_us = statistics.median(mine) * 1e6
        if anchors is None:
            print(f"{name:34} {ours_us:12.2f} {'n/a':>18} {'n/a':>7}")
            continue
        theirs_us = statistics.median(theirs) * 1e6
        print(f"{name:34} {ours_us:12.2f} {theirs_us:18.2f} {ours_us / theirs_us:7.2f}")


if __name__ == "__main__":
    main()
