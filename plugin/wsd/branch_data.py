"""Batches for a decay branch: the training data that follows, without touching the run's iterator.

A branch opens its own pass over the training loader and skips the batches the run has
already taken in the current epoch, so that it trains on the batches that come next:
exactly the run's next batches when the order does not depend on when the pass starts
(no shuffling, or a ``DistributedSampler``, whose order is a function of seed and epoch);
with a ``RandomSampler`` the branch's pass draws its own order from the torch generator,
which the branch's snapshot restores afterwards. When the pass ends the branch starts
another one.

For a map-style ``DataLoader`` the skip walks only the batch sampler (indices, no data)
and the branch loads its batches in the main process with the loader's ``collate_fn``
(no worker processes are started for a few decay steps); any other iterable is iterated
and the skipped batches are loaded and dropped.
"""
from __future__ import annotations

import itertools
from typing import Any, Iterable, Iterator

from torch.utils.data import DataLoader, IterableDataset

__all__ = ["branch_batches"]


def _map_style_pass(loader: DataLoader, skip: int) -> Iterator[Any]:
    dataset, collate = loader.dataset, loader.collate_fn
    fetch_many = getattr(dataset, "__getitems__", None)
    for indices in itertools.islice(iter(loader.batch_sampler), skip, None):
        samples = fetch_many(indices) if fetch_many is not None else [dataset[i] for i in indices]
        yield collate(samples)


def _one_pass(loader: Iterable, skip: int) -> Iterator[Any]:
    if isinstance(loader, DataLoader) and loader.batch_sampler is not None and not isinstance(loader.dataset, IterableDataset):
        return _map_style_pass(loader, skip)
    return itertools.islice(iter(loader), skip, None)


def branch_batches(loader: Iterable, skip: int = 0) -> Iterator[Any]:
    """Endless batches of ``loader``: the rest of a pass after ``skip`` batches, then whole passes."""
    if skip < 0:
        raise ValueError(f"branch_batches: skip must be >= 0, got {skip}.")
    first = True
    while True:
        produced = False
        for batch in _one_pass(loader, skip if first else 0):
            produced = True
            yield batch
        if not produced and not first:
            raise ValueError("branch_batches: the training loader produced no batches; a decay branch needs data.")
        first = False
