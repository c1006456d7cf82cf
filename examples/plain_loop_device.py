"""A plain PyTorch training loop on the simulated static-graph device.

    python examples/plain_loop_device.py                  # checked, then eager
    python examples/plain_loop_device.py --compile        # checked, then torch.compile
    python examples/plain_loop_device.py --mistake item   # see what a violation says

The first step is captured and the next three are verified against it; afterwards the
step runs with nothing installed (or compiled). Values are read after the step: the loss
is returned by the step function and printed by the loop, and a step closure logs the
gradient norm once the step has ended. ``--mistake`` injects one of the five breaks of
the contract (item, shape, graph, lr, state) and prints the error the device raises.
"""
from __future__ import annotations

import argparse

import torch
from torch.utils.data import DataLoader, TensorDataset

from wse.device import Device, StaticGraphViolation
from wse.optim.lr_scheduler import CosineDecayLR, LinearLR, SequentialLR

MISTAKES = ("item", "shape", "graph", "lr", "state")


def data(samples: int = 500, seed: int = 0) -> TensorDataset:
    """y = sin(x . w) + noise, 16 features."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, 16, generator=generator)
    w = torch.randn(16, generator=generator)
    return TensorDataset(x, torch.sin(x @ w).unsqueeze(1) + 0.05 * torch.randn(samples, 1, generator=generator))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="run the verified step through torch.compile")
    parser.add_argument("--mistake", choices=MISTAKES, help="break the contract on purpose")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.GELU(), torch.nn.Linear(64, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    loader = DataLoader(data(), batch_size=32, shuffle=True, drop_last=args.mistake != "shape")
    total = args.epochs * len(loader)
    if args.mistake == "lr":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)  # writes Python floats
    else:
        warmup = LinearLR(optimizer, 0.0, 3e-3, total_iters=20)
        decay = CosineDecayLR(optimizer, 3e-3, 1e-5, total_iters=total - 20)
        scheduler = SequentialLR(optimizer, [warmup, decay], milestones=[20]).enable_tensor_values()

    device = Device(model, optimizer, scheduler, check="strict", compile=args.compile)

    @device.step_closure
    def log_grad_norm(norm: torch.Tensor) -> None:
        step = device.step_count  # closures run once the step has completed: this is its number
        if step % 20 == 0:
            print(f"  step {step:4d}  grad norm {norm.item():.3f}")  # read after the step ended

    def train_step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = torch.nn.functional.mse_loss(model(x), y)
        if args.mistake == "item" and loss.item() > 10:  # a host read inside the step
            loss = loss * 0.5
        if args.mistake == "graph" and device.step_count == 2:  # control flow on the step number
            loss = loss + 0.0 * loss
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        log_grad_norm(norm)  # a changing Python number here would recompile a compiled step
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
        return loss.detach()

    step = device.wrap(train_step)
    try:
        for epoch in range(args.epochs):
            losses = []
            for x, y in loader:
                losses.append(step(x, y))
                if args.mistake == "state" and device.step_count == 2:  # state re-allocated after step 1
                    for state in optimizer.state.values():
                        state["exp_avg"] = torch.zeros_like(state["exp_avg"])
            print(f"epoch {epoch}: mean loss {torch.stack(losses).mean().item():.4f}")
    except StaticGraphViolation as error:
        print(f"\n{type(error).__name__} at {error.location.filename}:{error.location.lineno}\n{error}")
        return
    print()
    print(device.report().format())


if __name__ == "__main__":
    main()
