"""Batches for a decay branch: the training data that follows, without touching the run's iterator.

A branch opens its own pass over the training loader and skips the batches the run has
already taken in the current epoch, so that it trains on the batches that come next:
exactly the run's next batches when the order does not depend on when the pass starts
(no shuffling, or a ``DistributedSampler``, whose order is a function of seed and epoch)
or when the branch starts at the end of a pass (it opens the next pass as the run would,
with the same random draws); a ``RandomSampler`` pass opened mid-epoch draws its own
order from the torch generator. Every draw is undone by the branch's snapshot. When a
pass ends the branch starts another one.

For a map-style ``DataLoader`` the skip walks only the batch sampler (indices, no data)
and the branch loads its batches in the main process with the loader's ``collate_fn``
(no worker processes are started for a few decay steps); any other iterable is iterated
and the skipped batches are loaded and dropped.
"""
from __future__ import annotations

import itertools
from typing import Any, Iterable, Iterator

import torch
from torch.utils.data import DataLoader, IterableDataset

__all__ = ["branch_batches"]


def _map_style_pass(loader: DataLoader, skip: int, new_pass: bool) -> Iterator[Any]:
    if new_pass:
        # Opening a DataLoader iterator draws its workers' base seed from the torch
        # generator before the first batch; a pass the run would open draws it too, so
        # that the branch sees the random numbers the run would have.
        torch.empty((), dtype=torch.int64).random_(generator=loader.generator)
    dataset, collate = loader.dataset, loader.collate_fn
    fetch_many = getattr(dataset, "__getitems__", None)
    for indices in itertools.islice(iter(loader.batch_sampler), skip, None):
        samples = fetch_many(indices) if fetch_many is not None else [dataset[i] for i in indices]
        yield collate(samples)


def _is_map_style(loader) -> bool:
    return isinstance(loader, DataLoader) and loader.batch_sampler is not None and not isinstance(loader.dataset, IterableDataset)


def _one_pass(loader: Iterable, skip: int, new_pass: bool) -> Iterator[Any]:
    if _is_map_style(loader):
        return _map_style_pass(loader, skip, new_pass)
    return itertools.islice(iter(loader), skip, None)


def branch_batches(loader: Iterable, skip: int = 0) -> Iterator[Any]:
    """Endless batches of ``loader``: the rest of the current pass after ``skip`` batches, then new passes.

    ``skip`` is the number of batches the run has taken from its current pass; when that
    is the whole pass, the branch starts with a new one, as the run would.
    """
    if skip < 0:
        raise ValueError(f"branch_batches: skip must be >= 0, got {skip}.")
    if _is_map_style(loader) and skip >= len(loader.batch_sampler):
        skip = 0
    new_pass = skip == 0
    while True:
        produced = False
        for batch in _one_pass(loader, skip, new_pass):
            produced = True
            yield batch
        if not produced and new_pass:
            raise ValueError("branch_batches: the training loader produced no batches; a decay branch needs data.")
        skip, new_pass = 0, True
