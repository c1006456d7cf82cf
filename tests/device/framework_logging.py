"""A stand-in for a framework's metric logging, as Lightning's ``self.log`` behaves.

The first call for a name allocates its accumulators (so step 1 runs operations later
steps do not), and each call reads nothing back; values are read on demand, after steps.
"""
import torch


class MetricLog:
    def __init__(self):
        self.totals = {}
        self.counts = {}

    def log(self, name: str, value: torch.Tensor) -> None:
        if name not in self.totals:
            self.totals[name] = torch.tensor(0.0)
            self.counts[name] = torch.tensor(0)
        self.totals[name] += value.detach()
        self.counts[name] += 1

    def mean(self, name: str) -> float:
        return (self.totals[name] / self.counts[name]).item()
