"""A tiny model with its optimizer and schedule, deterministic batches, and source-line lookup."""
import torch

from wse.device import Device
from wse.optim.lr_scheduler import LinearLR


class Tiny:
    """A 4 -> 8 -> 1 MLP, a torch optimizer and an optional LR scheduler."""

    def __init__(self, optimizer: str = "adamw", scheduler: str = "tensor", seed: int = 0):
        torch.manual_seed(seed)
        self.model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        params = self.model.parameters()
        if optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.1)
        elif optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=1e-2, momentum=0.9)
        else:
            raise ValueError(optimizer)
        if scheduler in ("tensor", "host"):
            self.scheduler = LinearLR(self.optimizer, 1e-2, 1e-3, total_iters=100)
            if scheduler == "tensor":
                self.scheduler.enable_tensor_values()
        elif scheduler == "torch":
            self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=1, gamma=0.9)
        elif scheduler is None:
            self.scheduler = None
        else:
            raise ValueError(scheduler)

    def device(self, **options) -> Device:
        return Device(self.model, self.optimizer, self.scheduler, **options)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).pow(2).mean()

    def train_step(self, x: torch.Tensor) -> torch.Tensor:
        loss = self.loss(x)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.detach()


def batches(count: int, batch_size: int = 8, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch_size, 4, generator=generator) for _ in range(count)]


STEPS = 50


def assert_same_training(eager: Tiny, eager_losses, other: Tiny, other_losses, rtol=1e-5, atol=1e-6) -> None:
    """Same losses at every step and same final parameters, to float tolerance."""
    torch.testing.assert_close(torch.stack(other_losses), torch.stack(eager_losses), rtol=rtol, atol=atol)
    for a, b in zip(other.model.parameters(), eager.model.parameters()):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


def line_of(path: str, marker: str) -> int:
    """The 1-based number of the one line of ``path`` that contains ``marker``."""
    with open(path) as handle:
        found = [number for number, line in enumerate(handle, 1) if marker in line]
    assert len(found) == 1, f"marker {marker!r} found on lines {found} of {path}"
    return found[0]
