"""branch_batches: the batches a decay branch trains on."""
import itertools

import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from wse.wsd import branch_batches


def numbered(n=10, batch_size=3, **kwargs):
    return DataLoader(TensorDataset(torch.arange(n)), batch_size=batch_size, **kwargs)


def firsts(batches, count):
    return [batch[0].tolist() for batch in itertools.islice(batches, count)]


def test_the_rest_of_the_pass_then_new_passes():
    assert firsts(branch_batches(numbered(), skip=2), 4) == [[6, 7, 8], [9], [0, 1, 2], [3, 4, 5]]


def test_a_branch_at_the_end_of_a_pass_starts_the_next():
    assert firsts(branch_batches(numbered(), skip=4), 2) == [[0, 1, 2], [3, 4, 5]]


def test_a_new_pass_draws_what_a_dataloader_iterator_draws():
    """Opening a pass consumes the torch generator as iter(DataLoader) does, so the run's random
    numbers after it (dropout) are the ones the run would have had; a pass continued mid-way draws nothing."""
    loader = numbered(shuffle=True)
    torch.manual_seed(3)
    expected_order = [b[0].tolist() for b in loader]
    expected_next = torch.rand(1)
    torch.manual_seed(3)
    assert firsts(branch_batches(loader, skip=4), 4) == expected_order
    assert torch.equal(torch.rand(1), expected_next)
    torch.manual_seed(3)
    before = torch.rand(1)
    torch.manual_seed(3)
    next(branch_batches(numbered(), skip=1))
    assert torch.equal(torch.rand(1), before)


class Counting(IterableDataset):
    def __iter__(self):
        return iter(range(5))


def test_an_iterable_loader_is_iterated_and_the_skipped_batches_dropped():
    loader = DataLoader(Counting(), batch_size=2)
    assert [b.tolist() for b in itertools.islice(branch_batches(loader, skip=1), 3)] == [[2, 3], [4], [0, 1]]
    assert list(itertools.islice(branch_batches([10, 11, 12], skip=2), 3)) == [12, 10, 11]


def test_no_data_is_an_error():
    with pytest.raises(ValueError, match="produced no batches"):
        next(branch_batches([], skip=0))
    with pytest.raises(ValueError, match="skip must be >= 0"):
        next(branch_batches([1], skip=-1))
