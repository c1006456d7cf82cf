"""Preinitialized torch optimizers keep torch's state layout and numbers; others are refused."""
import copy
import warnings

import pytest
import torch

from wse.lightning.errors import LazyOptimizerStateError, WSEStrategyWarning
from wse.lightning.preinitialize import preinitialize

STEPS = 6

CASES = [
    (torch.optim.Adadelta, {}),
    (torch.optim.Adadelta, {"weight_decay": 0.1, "maximize": True, "foreach": False}),
    (torch.optim.Adagrad, {"lr_decay": 0.01, "initial_accumulator_value": 0.1}),
    (torch.optim.Adagrad, {"fused": True}),
    (torch.optim.Adam, {}),
    (torch.optim.Adam, {"amsgrad": True, "foreach": False}),
    (torch.optim.Adam, {"fused": True, "weight_decay": 0.01}),
    (torch.optim.AdamW, {"weight_decay": 0.1, "amsgrad": True}),
    (torch.optim.Adamax, {"weight_decay": 0.01}),
    (torch.optim.ASGD, {"t0": 2, "lambd": 1e-3}),
    (torch.optim.NAdam, {"momentum_decay": 0.01, "decoupled_weight_decay": True, "weight_decay": 0.1}),
    (torch.optim.RAdam, {"decoupled_weight_decay": True, "weight_decay": 0.1}),
    (torch.optim.RMSprop, {}),
    (torch.optim.RMSprop, {"momentum": 0.9, "centered": True, "foreach": False}),
    (torch.optim.Rprop, {"etas": (0.4, 1.3)}),
    (torch.optim.SGD, {}),
    (torch.optim.SGD, {"momentum": 0.9}),
    (torch.optim.SGD, {"momentum": 0.9, "nesterov": True, "foreach": False}),
    (torch.optim.SGD, {"momentum": 0.8, "fused": True, "weight_decay": 0.01}),
]


def _params(device="cpu"):
    generator = torch.Generator().manual_seed(0)
    shapes = [(3, 4), (4,), (1,)]
    return [torch.nn.Parameter(torch.randn(shape, generator=generator).to(device)) for shape in shapes]


def _run(optimizer, params, steps):
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=generator).to(p.device)
        optimizer.step()


def _case_id(case):
    cls, kwargs = case
    return cls.__name__ + "".join(f"-{k}" for k in kwargs)


@pytest.mark.parametrize("cls, kwargs", CASES, ids=[_case_id(c) for c in CASES])
def test_preinitialized_torch_optimizer_has_torch_layout_and_trajectory(cls, kwargs):
    _check_layout_and_trajectory(cls, kwargs, "cpu")


# On CUDA, capturable and fused optimizers keep their `step` on the device.
CUDA_CASES = [
    (torch.optim.Adam, {"capturable": True}),
    (torch.optim.AdamW, {"fused": True, "amsgrad": True}),
    (torch.optim.Adagrad, {"fused": True}),
    (torch.optim.Adadelta, {"capturable": True}),
    (torch.optim.Adamax, {"capturable": True}),
    (torch.optim.ASGD, {"capturable": True}),
    (torch.optim.NAdam, {"capturable": True}),
    (torch.optim.RAdam, {"capturable": True}),
    (torch.optim.RMSprop, {"capturable": True, "momentum": 0.9, "centered": True}),
    (torch.optim.Rprop, {"capturable": True}),
    (torch.optim.SGD, {"fused": True, "momentum": 0.9}),
]


@pytest.mark.gpu
@pytest.mark.parametrize("cls, kwargs", CUDA_CASES, ids=[_case_id(c) for c in CUDA_CASES])
def test_preinitialized_capturable_and_fused_optimizers_on_cuda(cls, kwargs):
    _check_layout_and_trajectory(cls, kwargs, "cuda")


def _check_layout_and_trajectory(cls, kwargs, device):
    lazy_params, early_params = _params(device), _params(device)
    lazy = cls(lazy_params, lr=0.01, **kwargs)
    early = cls(early_params, lr=0.01, **kwargs)

    assert preinitialize(early) == f"{cls.__name__}: torch layout"
    allocated = {i: copy.deepcopy(early.state.get(p, {})) for i, p in enumerate(early_params)}

    _run(lazy, lazy_params, 1)
    for i, p in enumerate(lazy_params):
        state = lazy.state.get(p, {})
        assert set(allocated[i]) == set(state), "the same state keys as torch creates on the first step"
        for key, value in state.items():
            early_value = allocated[i][key]
            assert (early_value.dtype, early_value.device, early_value.shape) == (value.dtype, value.device, value.shape), key

    _run(early, early_params, 1)
    _run(lazy, lazy_params, STEPS - 1)
    _run(early, early_params, STEPS - 1)
    for lazy_p, early_p in zip(lazy_params, early_params):
        assert torch.equal(lazy_p, early_p)
    lazy_state, early_state = lazy.state_dict()["state"], early.state_dict()["state"]
    assert lazy_state.keys() == early_state.keys()
    for index in lazy_state:
        for key, value in lazy_state[index].items():
            assert torch.equal(value, early_state[index][key]), (index, key)


def test_step_counter_follows_the_default_dtype():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        params = _params()
        optimizer = torch.optim.Adam(params)
        preinitialize(optimizer)
        assert optimizer.state[params[0]]["step"].dtype == torch.float64
    finally:
        torch.set_default_dtype(previous)


def test_existing_state_and_frozen_parameters_are_left_alone():
    params = _params()
    params[2].requires_grad_(False)
    optimizer = torch.optim.Adam(params)
    _run(optimizer, params[:2], 0)
    loaded = {"step": torch.tensor(3.0), "exp_avg": torch.ones(3, 4), "exp_avg_sq": torch.ones(3, 4)}
    optimizer.state[params[0]] = loaded
    preinitialize(optimizer)
    assert optimizer.state[params[0]] is loaded
    assert set(optimizer.state[params[1]]) == {"step", "exp_avg", "exp_avg_sq"}
    assert params[2] not in optimizer.state


def test_lazy_optimizer_is_refused_with_the_fix():
    optimizer = torch.optim.LBFGS(_params())
    with pytest.raises(LazyOptimizerStateError, match="LBFGS") as error:
        preinitialize(optimizer)
    message = str(error.value)
    assert "wse.optim" in message and "preinitialize()" in message and "strict='warn'" in message


def test_subclass_with_its_own_step_is_not_guessed():
    class MyAdam(torch.optim.Adam):
        def step(self, closure=None):
            return super().step(closure)

    class PlainAdam(torch.optim.Adam):
        """A subclass that adds nothing: it keeps torch Adam's state layout."""

    with pytest.raises(LazyOptimizerStateError, match="MyAdam"):
        preinitialize(MyAdam(_params()))
    assert preinitialize(PlainAdam(_params())) == "PlainAdam: torch layout"


def test_warn_and_off_leave_the_state_lazy():
    optimizer = torch.optim.LBFGS(_params())
    with pytest.warns(WSEStrategyWarning, match="LBFGS"):
        assert "lazy" in preinitialize(optimizer, strict="warn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "lazy" in preinitialize(optimizer, strict="off")
    assert not optimizer.state


def test_sgd_with_dampening_is_refused_because_torch_damps_from_the_second_step():
    params = _params()
    optimizer = torch.optim.SGD(
        [{"params": params[:1]}, {"params": params[1:], "dampening": 0.5}], lr=0.1, momentum=0.9
    )
    with pytest.raises(LazyOptimizerStateError, match="param group 1.*dampening=0.5"):
        preinitialize(optimizer)
    with pytest.warns(WSEStrategyWarning):
        assert preinitialize(optimizer, strict="warn") == "SGD: torch layout, lazy in param groups [1]"
    assert "momentum_buffer" in optimizer.state[params[0]]
    assert not optimizer.state.get(params[1])


def test_optimizer_with_its_own_preinitialize_is_called_once_when_state_is_missing():
    class Counting(torch.optim.SGD):
        calls = 0

        def preinitialize(self):
            Counting.calls += 1
            for group in self.param_groups:
                for p in group["params"]:
                    self.state[p]["momentum_buffer"] = torch.zeros_like(p)

    optimizer = Counting(_params(), lr=0.1, momentum=0.9)
    assert preinitialize(optimizer) == "Counting: preinitialize()"
    assert preinitialize(optimizer) == "Counting: preinitialize()"
    assert Counting.calls == 1


def test_bad_strict_is_an_error():
    with pytest.raises(ValueError, match="strict"):
        preinitialize(torch.optim.SGD(_params(), lr=0.1), strict="yes")
