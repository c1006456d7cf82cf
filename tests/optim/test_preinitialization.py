"""wse.optim.preinitialize: torch optimizers get torch's own state and numbers, bit for bit; others are refused."""
import copy
import warnings

import pytest
import torch

import wse.optim
from wse.rules import LazyOptimizerStateError, WSERuleWarning

STEPS = 6

CASES = [
    (torch.optim.Adadelta, {}),
    (torch.optim.Adadelta, {"weight_decay": 0.1, "maximize": True, "foreach": False}),
    (torch.optim.Adafactor, {}),
    (torch.optim.Adafactor, {"weight_decay": 0.1, "beta2_decay": -0.5, "foreach": False}),
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


def _params(device="cpu", shapes=((3, 4), (4,), (1,))):
    generator = torch.Generator().manual_seed(0)
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


def _check_layout_and_trajectory(cls, kwargs, device, shapes=((3, 4), (4,), (1,))):
    """Untouched torch (state created by its first step) against preinitialized: equal, bit for bit."""
    lazy_params, early_params = _params(device, shapes), _params(device, shapes)
    lazy = cls(lazy_params, lr=0.01, **kwargs)
    early = cls(early_params, lr=0.01, **kwargs)

    assert wse.optim.preinitialize(early) == f"{cls.__name__}: torch layout"
    assert all(p.grad is None for p in early_params), "the stand-in gradients are removed again"
    allocated = {i: copy.deepcopy(early.state.get(p, {})) for i, p in enumerate(early_params)}

    _run(lazy, lazy_params, 1)
    for i, p in enumerate(lazy_params):
        state = lazy.state.get(p, {})
        assert list(allocated[i]) == list(state), "the same state keys, in the order torch creates them"
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
        assert lazy_state[index].keys() == early_state[index].keys()
        for key, value in lazy_state[index].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(early_state[index][key])), (index, key)


@pytest.mark.parametrize("cls, kwargs", CASES, ids=[_case_id(c) for c in CASES])
def test_preinitialized_torch_optimizer_has_torch_layout_and_trajectory(cls, kwargs):
    _check_layout_and_trajectory(cls, kwargs, "cpu")


@pytest.mark.parametrize("kwargs", [{}, {"nesterov": False, "weight_decay": 0.1}])
def test_muon_is_preinitialized_by_torch_own_code(kwargs):
    # Muon takes 2-d parameters only.
    _check_layout_and_trajectory(torch.optim.Muon, kwargs, "cpu", shapes=((3, 4), (4, 2)))


@pytest.mark.gpu
@pytest.mark.parametrize("cls, kwargs", CUDA_CASES, ids=[_case_id(c) for c in CUDA_CASES])
def test_preinitialized_capturable_and_fused_optimizers_on_cuda(cls, kwargs):
    _check_layout_and_trajectory(cls, kwargs, "cuda")


def test_a_gradient_already_there_is_kept():
    params = _params()
    gradient = torch.full_like(params[0], 3.0)
    params[0].grad = gradient
    optimizer = torch.optim.Adam(params)
    wse.optim.preinitialize(optimizer)
    assert params[0].grad is gradient and torch.equal(gradient, torch.full_like(params[0], 3.0))
    assert params[1].grad is None
    assert all(float(optimizer.state[p]["step"]) == 0.0 for p in params)


def test_step_counter_follows_the_default_dtype():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        params = _params()
        optimizer = torch.optim.Adam(params)
        wse.optim.preinitialize(optimizer)
        assert optimizer.state[params[0]]["step"].dtype == torch.float64
    finally:
        torch.set_default_dtype(previous)


def test_existing_state_and_frozen_parameters_are_left_alone():
    params = _params()
    params[2].requires_grad_(False)
    optimizer = torch.optim.Adam(params)
    loaded = {"step": torch.tensor(3.0), "exp_avg": torch.ones(3, 4), "exp_avg_sq": torch.ones(3, 4)}
    optimizer.state[params[0]] = loaded
    wse.optim.preinitialize(optimizer)
    assert optimizer.state[params[0]] is loaded
    assert set(optimizer.state[params[1]]) == {"step", "exp_avg", "exp_avg_sq"}
    assert params[2] not in optimizer.state


def test_lazy_optimizer_is_refused_with_the_fix_and_the_classes_handled():
    with pytest.raises(LazyOptimizerStateError, match="LBFGS") as error:
        wse.optim.preinitialize(torch.optim.LBFGS(_params()))
    message = str(error.value)
    assert "wse.optim" in message and "`preinitialize()` method" in message
    assert "Adafactor" in message and "Muon" in message and "SGD" in message
    assert message.endswith("To train anyway, pass strict='warn' or strict='off'.")


def test_sparse_adam_has_no_state_to_make_and_is_refused():
    with pytest.raises(LazyOptimizerStateError, match="SparseAdam"):
        wse.optim.preinitialize(torch.optim.SparseAdam(_params()))


def test_subclass_with_its_own_step_is_not_guessed():
    class MyAdam(torch.optim.Adam):
        def step(self, closure=None):
            return super().step(closure)

    class PlainAdam(torch.optim.Adam):
        """A subclass that adds nothing: it keeps torch Adam's state layout."""

    with pytest.raises(LazyOptimizerStateError, match="MyAdam"):
        wse.optim.preinitialize(MyAdam(_params()))
    assert wse.optim.preinitialize(PlainAdam(_params())) == "PlainAdam: torch layout"


def test_warn_and_off_leave_the_state_lazy_and_warn_with_the_given_category():
    class IntegrationWarning(WSERuleWarning):
        pass

    optimizer = torch.optim.LBFGS(_params())
    with pytest.warns(WSERuleWarning, match="LBFGS"):
        assert "lazy" in wse.optim.preinitialize(optimizer, strict="warn")
    with pytest.warns(IntegrationWarning, match="To train anyway, pass Integration\\(strict='warn'\\)"):
        wse.optim.preinitialize(optimizer, "warn", category=IntegrationWarning, relax="pass Integration(strict='warn')")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "lazy" in wse.optim.preinitialize(optimizer, strict="off")
    assert not optimizer.state


def test_sgd_with_dampening_is_refused_because_torch_damps_from_the_second_step():
    params = _params()
    optimizer = torch.optim.SGD([{"params": params[:1]}, {"params": params[1:], "dampening": 0.5}], lr=0.1, momentum=0.9)
    with pytest.raises(LazyOptimizerStateError, match="param group 1.*dampening=0.5"):
        wse.optim.preinitialize(optimizer)
    with pytest.warns(WSERuleWarning):
        assert wse.optim.preinitialize(optimizer, strict="warn") == "SGD: torch layout, lazy in param groups [1]"
    assert "momentum_buffer" in optimizer.state[params[0]]
    assert not optimizer.state.get(params[1])


def test_wse_optimizer_allocates_its_own_state():
    params = _params()
    optimizer = wse.optim.AdamW(params, lr=0.01)
    assert wse.optim.preinitialize(optimizer) == "AdamW: preinitialize()"
    assert all(optimizer.state[p] for p in params)


def test_bad_strict_is_an_error_that_names_the_modes():
    with pytest.raises(ValueError, match="preinitialize: `strict` must be one of \\('raise', 'warn', 'off'\\), got 'yes'"):
        wse.optim.preinitialize(torch.optim.SGD(_params(), lr=0.1), strict="yes")
