"""The strategy preinitializes with wse.optim.preinitialize, refusing in its own words and warning category.

The exactness of the state (torch's own, bit for bit, for every torch.optim class and
switch) is tested once, on the shared mechanism: tests/optim/test_preinitialization.py.
"""
import warnings

import pytest
import torch

from wse.lightning.errors import LazyOptimizerStateError, WSEStrategyWarning
from wse.lightning.preinitialize import preinitialize


def _params():
    generator = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in [(3, 4), (4,), (1,)]]


def test_torch_optimizer_gets_the_state_its_first_step_would_create():
    params = _params()
    optimizer = torch.optim.AdamW(params, lr=0.01, amsgrad=True)
    assert preinitialize(optimizer) == "AdamW: torch layout"
    for p in params:
        state = optimizer.state[p]
        assert list(state) == ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
        assert state["step"].device.type == "cpu" and float(state["step"]) == 0.0
        assert all(torch.equal(state[key], torch.zeros_like(p)) for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"))


def test_lazy_optimizer_is_refused_with_the_fix():
    optimizer = torch.optim.LBFGS(_params())
    with pytest.raises(LazyOptimizerStateError, match="LBFGS") as error:
        preinitialize(optimizer)
    message = str(error.value)
    assert "wse.optim" in message and "preinitialize()" in message
    assert "To train anyway, pass WSEStrategy(strict='warn') or strict='off'." in message


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
    with pytest.raises(LazyOptimizerStateError, match="param group 1.*dampening=0.5.*WSEStrategy\\(strict='warn'\\)"):
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
