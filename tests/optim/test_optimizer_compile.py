"""A compiled optimizer step reads scheduled tensor hyperparameters without recompiling."""
import pytest
import torch

import wse.optim
from wse.optim.lr_scheduler import CosineDecayLR
from wse.optim.weight_decay_scheduler import LinearWD

from . import optimizer_cases as C

STEPS = 100


class CountingBackend:
    """A torch.compile backend that counts compilations and runs the captured graph as is."""

    def __init__(self):
        self.compilations = 0

    def __call__(self, graph_module, example_inputs):
        self.compilations += 1
        return graph_module.forward


def _train(cls_name, kwargs, compiled: bool):
    torch._dynamo.reset()  # compiled code is cached per code object: start each case afresh
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    optimizer = getattr(wse.optim, cls_name)(model.parameters(), **kwargs)
    lr = CosineDecayLR(optimizer, kwargs["lr"], kwargs["lr"] / 10, STEPS).enable_tensor_values()
    wd = LinearWD(optimizer, 0.0, 0.1, STEPS).enable_tensor_values() if "weight_decay" in kwargs else None
    backend = CountingBackend()

    def step():
        optimizer.step()

    run = torch.compile(step, backend=backend, fullgraph=True) if compiled else step
    inputs = torch.linspace(-1, 1, 24).reshape(4, 6)
    for _ in range(STEPS):
        optimizer.zero_grad()
        model(inputs).square().mean().backward()
        run()
        lr.step()
        if wd is not None:
            wd.step()
    return [p.detach() for p in model.parameters()], backend.compilations


@pytest.mark.parametrize(
    "cls_name, kwargs",
    [
        ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
        ("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1}),
        ("Adafactor", {"lr": 0.01, "weight_decay": 0.1}),
    ],
)
def test_a_compiled_step_is_compiled_once_while_schedulers_change_lr_and_weight_decay(cls_name, kwargs):
    compiled, compilations = _train(cls_name, kwargs, compiled=True)
    eager, _ = _train(cls_name, kwargs, compiled=False)
    assert compilations == 1
    for a, b in zip(compiled, eager):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cls_name", sorted({cls for cls, _ in C.CASES.values()}))
def test_every_optimizer_step_compiles_to_one_graph(cls_name):
    kwargs = dict(next(kw for cls, kw in C.CASES.values() if cls == cls_name))
    kwargs["lr"] = torch.tensor(float(kwargs.get("lr", 1.0)))
    params = C.initial_params()
    optimizer = getattr(wse.optim, cls_name)(params, **kwargs)
    backend = CountingBackend()
    torch._dynamo.reset()
    step = torch.compile(optimizer.step, backend=backend, fullgraph=True)
    for index in (0, 1, 3, 4):  # steps where every parameter has a gradient
        C.set_gradients(params, index)
        step()
        kwargs["lr"].mul_(0.5)
    assert backend.compilations == 1


@pytest.mark.slow
def test_the_default_compiler_gives_the_eager_numbers():
    torch._dynamo.reset()
    params = C.initial_params()
    eager_params = C.initial_params()
    kwargs = {"lr": torch.tensor(0.01, dtype=torch.float64), "weight_decay": torch.tensor(0.1, dtype=torch.float64)}
    compiled = wse.optim.AdamW(C.param_groups(params, {}), **kwargs)
    eager = wse.optim.AdamW(C.param_groups(eager_params, {}), **{k: v.clone() for k, v in kwargs.items()})
    step = torch.compile(compiled.step, fullgraph=True)
    for index in (0, 1, 3):
        C.set_gradients(params, index)
        C.set_gradients(eager_params, index)
        step()
        eager.step()
    for a, b in zip(params, eager_params):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-12, atol=1e-14)
