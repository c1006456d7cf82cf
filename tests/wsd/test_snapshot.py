"""RunSnapshot: a detour of training steps, then restore, leaves a run exactly as if there were no detour."""
import random

import numpy
import pytest
import torch

import wse.optim
from wse.compat.pytorch_accelerated import WSDLrScheduler
from wse.optim.lr_scheduler import CosineDecayLR
from wse.wsd import RunSnapshot, capture_rng_states, restore_rng_states


class Run:
    """A small training run that draws from every generator: dropout, Python random, numpy."""

    def __init__(self, tensor_lr=False):
        torch.manual_seed(0)
        random.seed(0)
        numpy.random.seed(0)
        self.model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.3), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
        if tensor_lr:
            self.optimizer = wse.optim.AdamW(self.model.parameters(), lr=0.1)
            self.schedulers = [CosineDecayLR(self.optimizer, 0.1, 0.01, total_iters=20).enable_tensor_values()]
        else:
            self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=0.1)
            # Its load_state_dict keeps its own update count, so only a snapshot of its attributes restores it.
            self.schedulers = [WSDLrScheduler(self.optimizer, total_steps=20, is_continuation_from_checkpoint=True)]
        self.draws = []

    def step(self, n=1):
        for _ in range(n):
            x = torch.randn(5, 3) + random.random() + float(numpy.random.rand())
            self.optimizer.zero_grad()
            self.model(x).pow(2).mean().backward()
            self.optimizer.step()
            for scheduler in self.schedulers:
                scheduler.step()
        self.draws.append((torch.rand(1).item(), random.random(), float(numpy.random.rand())))

    def state(self):
        tensors = {k: v.clone() for k, v in self.model.state_dict().items()}
        grads = [p.grad.clone() if p.grad is not None else None for p in self.model.parameters()]
        opt = [(k, v.clone() if torch.is_tensor(v) else v) for s in self.optimizer.state.values() for k, v in s.items()]
        lrs = [float(g["lr"]) for g in self.optimizer.param_groups]
        return tensors, grads, opt, lrs, self.draws


def assert_same(a, b):
    (ta, ga, oa, la, da), (tb, gb, ob, lb, db) = a, b
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
    assert all((x is None and y is None) or torch.equal(x, y) for x, y in zip(ga, gb))
    assert [k for k, _ in oa] == [k for k, _ in ob]
    assert all(torch.equal(x, y) if torch.is_tensor(x) else x == y for (_, x), (_, y) in zip(oa, ob))
    assert la == lb and da == db


def straight_run(tensor_lr=False, before=3, after=4):
    """The run without a detour (the runs share the global generators: one after the other)."""
    run = Run(tensor_lr)
    if before:
        run.step(before)
    run.step(after)
    return run.state()


@pytest.mark.parametrize("tensor_lr", [False, True])
@pytest.mark.parametrize("storage", ["cpu", None])
def test_a_detour_leaves_no_trace(tensor_lr, storage):
    expected = straight_run(tensor_lr)
    run = Run(tensor_lr)
    run.step(3)
    snapshot = RunSnapshot.capture(run.model, [run.optimizer], run.schedulers, storage=storage)
    run.model.eval()
    run.step(5)
    run.model.train()
    run.draws.pop()
    snapshot.restore()
    run.step(4)
    assert_same(expected, run.state())
    assert "RunSnapshot(" in repr(snapshot)


def test_restore_writes_into_the_same_tensors():
    run = Run(tensor_lr=True)
    run.step(2)
    parameters = list(run.model.parameters())
    state = {id(p): dict(run.optimizer.state[p]) for p in parameters}
    lr = run.optimizer.param_groups[0]["lr"]
    snapshot = RunSnapshot.capture(run.model, [run.optimizer], run.schedulers)
    run.step(3)
    snapshot.restore()
    assert list(run.model.parameters()) == parameters
    for p in parameters:
        assert all(run.optimizer.state[p][k] is v for k, v in state[id(p)].items() if torch.is_tensor(v))
    # A tensor-valued lr stays the scheduler's buffer, which a compiled step may have captured.
    assert run.optimizer.param_groups[0]["lr"] is lr and run.schedulers[0]._value_tensors[0] is lr


def test_state_created_during_the_detour_is_removed():
    expected = straight_run(before=0, after=3)
    run = Run()
    snapshot = RunSnapshot.capture(run.model, [run.optimizer], run.schedulers)
    assert not run.optimizer.state and all(p.grad is None for p in run.model.parameters())
    run.step(2)
    run.draws.pop()
    snapshot.restore()
    assert not run.optimizer.state and all(p.grad is None for p in run.model.parameters())
    run.step(3)
    assert_same(expected, run.state())


def test_rng_states_round_trip():
    states = capture_rng_states()
    expected = (torch.rand(3), random.random(), numpy.random.rand())
    restore_rng_states(states)
    again = (torch.rand(3), random.random(), numpy.random.rand())
    assert torch.equal(expected[0], again[0]) and expected[1:] == again[1:]


def test_child_schedulers_stay_the_same_objects():
    def sequential(optimizer):
        warm = torch.optim.lr_scheduler.LinearLR(optimizer, 0.1, 1.0, total_iters=3)
        decay = torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.9)
        return torch.optim.lr_scheduler.SequentialLR(optimizer, [warm, decay], milestones=[3])

    expected = Run()
    expected.schedulers = [sequential(expected.optimizer)]
    expected.step(2)
    expected.step(4)
    run = Run()
    run.schedulers = [sequential(run.optimizer)]
    run.step(2)
    children = list(run.schedulers[0]._schedulers)
    snapshot = RunSnapshot.capture(run.model, [run.optimizer], run.schedulers)
    run.step(5)
    run.draws.pop()
    snapshot.restore()
    assert all(a is b for a, b in zip(run.schedulers[0]._schedulers, children))
    assert children[0].optimizer is run.optimizer
    run.step(4)
    assert_same(expected.state(), run.state())
