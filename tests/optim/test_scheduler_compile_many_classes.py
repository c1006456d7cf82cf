"""Any number of schedule classes in one process: each compiled step compiles once, none is left eager."""
import pytest
import torch

import wse.optim
from wse.optim import lr_scheduler as S

# Ten schedule classes (the recompile limit of one code object is 8), each built as a user would.
SCHEDULERS = [
    lambda o: S.ConstantLR(o, 0.1),
    lambda o: S.PolynomialLR(o, 0.1, 0.01, 20, power=2.0),
    lambda o: S.LinearLR(o, 0.1, 0.01, 20),
    lambda o: S.ExponentialLR(o, 0.1, 20, 0.5),
    lambda o: S.InverseExponentialTimeDecayLR(o, 0.1, 1, 20, 0.5),
    lambda o: S.InverseSquareRootDecayLR(o, 0.1, 1.0, 2),
    lambda o: S.CosineDecayLR(o, 0.1, 0.01, 20),
    lambda o: S.MultiStepLR(o, 0.1, 0.5, [1, 3]),
    lambda o: S.StepLR(o, 0.1, 2, 0.5),
    lambda o: S.CosineAnnealingLR(o, 0.1, 20),
]
STEPS = 4


class CountingBackend:
    """Counts the graphs compiled and runs each as captured."""

    def __init__(self):
        self.compilations = 0

    def __call__(self, graph_module, example_inputs):
        self.compilations += 1
        return graph_module.forward


def _train(make_scheduler, compiled: bool):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = wse.optim.SGD(model.parameters(), lr=0.1)
    scheduler = make_scheduler(optimizer).enable_tensor_values()
    backend = CountingBackend()

    def step():
        optimizer.step()
        scheduler.step()

    # a code object of its own for this run's step, as each training script has: what is
    # tested is that nothing of wse's is a frame shared by the runs
    step.__code__ = step.__code__.replace(co_name=f"step_{id(scheduler)}")
    run = torch.compile(step, backend=backend) if compiled else step
    compilations, lrs = [], []
    for _ in range(STEPS):
        optimizer.zero_grad()
        model(torch.ones(2, 3)).sum().backward()
        run()
        compilations.append(backend.compilations)
        lrs.append(float(optimizer.param_groups[0]["lr"]))
    return compilations, lrs, [p.detach().clone() for p in model.parameters()]


def test_ten_schedule_classes_in_one_process_each_compile_the_step_once():
    torch._dynamo.reset()
    per_class = []
    for make in SCHEDULERS:
        compilations, lrs, params = _train(make, compiled=True)
        _, eager_lrs, eager_params = _train(make, compiled=False)
        name = type(make(wse.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1))).__name__
        assert compilations[0] == compilations[-1], f"{name}: recompiled after the first step: {compilations}"
        assert lrs == pytest.approx(eager_lrs), name
        for compiled_param, eager_param in zip(params, eager_params):
            torch.testing.assert_close(compiled_param, eager_param)
        per_class.append((name, compilations[0]))
    # the same graphs for the tenth class as for the first: no frame fell back to eager
    assert len({count for _, count in per_class}) == 1, per_class
