"""The host and tensor paths of every schedule are one formula; the tensor path compiles once."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wse import schedules as S

finite = st.floats(min_value=-10.0, max_value=10.0, allow_nan=False)
positive = st.floats(min_value=0.01, max_value=10.0)
steps = st.integers(min_value=1, max_value=3000)

SCHEDULES = st.one_of(
    st.builds(S.Constant, finite),
    st.builds(S.Polynomial, finite, finite, steps, st.floats(0.0, 4.0), st.booleans()),
    st.builds(S.Exponential, finite, steps, positive, st.booleans()),
    st.builds(S.InverseTimeDecay, finite, st.integers(0, 3), steps, positive, st.booleans()),
    st.builds(S.InverseSquareRoot, finite, positive, steps),
    st.builds(S.CosineDecay, finite, finite, steps),
    st.builds(S.CosineAnnealing, finite, steps, finite),
    st.builds(S.Step, finite, steps, positive),
    st.builds(S.MultiStep, finite, positive, st.lists(st.integers(0, 3000), max_size=4, unique=True).map(sorted)),
    st.builds(S.Multiplicative, finite, st.floats(0.9, 1.001)),
    st.builds(S.Cyclic, finite, finite, steps, steps, st.sampled_from(["triangular", "triangular2", "exp_range"]), st.floats(0.99, 1.0)),
    st.builds(S.OneCycle, positive, positive, st.integers(100, 3000), st.floats(0.05, 0.45), positive, st.booleans(), st.sampled_from(["cos", "linear"])),
    st.builds(S.CosineWarmRestarts, finite, steps, st.integers(1, 3), finite),
)


@settings(max_examples=150, deadline=None)
@given(schedule=SCHEDULES, step=st.integers(0, 5000))
def test_host_and_tensor_paths_agree(schedule, step):
    host = schedule(step)
    tensor = schedule(torch.tensor(step, dtype=torch.float64))
    assert isinstance(host, float) and isinstance(tensor, torch.Tensor) and tensor.dim() == 0
    if math.isnan(host):  # e.g. 0 * inf after an overflow, on both paths
        assert math.isnan(tensor.item())
    else:
        assert tensor.item() == pytest.approx(host, rel=1e-9, abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(a=SCHEDULES, b=SCHEDULES, milestone=st.integers(1, 2000), step=st.integers(0, 4000))
def test_sequential_restarts_each_part_at_its_milestone(a, b, milestone, step):
    joined = S.Sequential((a, b), (milestone,))
    expected = a(step) if step < milestone else b(step - milestone)
    assert joined(step) == expected
    assert joined(torch.tensor(step, dtype=torch.float64)).item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_closed_forms():
    assert S.Polynomial(1.0, 0.0, 10, power=2.0)(5) == 0.25
    assert S.Polynomial(1.0, 0.5, 10)(50) == 0.5
    assert S.Exponential(2.0, 10, 0.5)(20) == 0.5
    assert S.Exponential(2.0, 10, 0.5, staircase=True)(19) == 1.0
    assert S.InverseTimeDecay(1.0, 1, 10, 1.0)(10) == 0.5
    assert S.InverseSquareRoot(1.0, 2.0, 4)(1) == 1.0 and S.InverseSquareRoot(1.0, 2.0, 4)(16) == 0.5
    assert S.CosineDecay(1.0, 0.0, 10)(5) == pytest.approx(0.5) and S.CosineDecay(1.0, 0.2, 10)(99) == pytest.approx(0.2)
    assert S.MultiStep(1.0, 0.1, (3, 6))(6) == pytest.approx(0.01)
    assert S.piecewise_constant([3.0, 2.0, 1.0], [10, 20])(15) == 2.0
    assert S.Product((S.Constant(2.0), S.Constant(3.0)))(7) == 6.0
    assert S.Shift(S.Polynomial(0.0, 1.0, 10), 5)(10) == pytest.approx(0.5)
    assert S.Cyclic(0.0, 1.0, 5)(5) == 1.0 and S.Cyclic(0.0, 1.0, 5)(10) == 0.0
    assert S.CosineWarmRestarts(1.0, 10)(10) == 1.0 and S.CosineWarmRestarts(1.0, 10)(15) == pytest.approx(0.5)
    assert S.OneCycle(0.1, 1.0, total_steps=102, pct_start=0.5)(50) == pytest.approx(1.0)
    assert math.isclose(S.OneCycle(0.1, 1.0, total_steps=102, pct_start=0.5)(101), 0.1 / 1e4)


def test_overflow_saturates_to_infinity_on_both_paths():
    schedule = S.Multiplicative(1.0, 9.0)
    assert schedule(400) == math.inf
    assert schedule(torch.tensor(400, dtype=torch.float64)).item() == math.inf


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match="total_steps"):
        S.CosineDecay(1.0, 0.0, 0)
    with pytest.raises(ValueError, match="strictly increasing"):
        S.Sequential((S.Constant(1.0), S.Constant(2.0), S.Constant(3.0)), (5, 5))
    with pytest.raises(TypeError, match="must be a number"):
        S.Constant("0.1")
    with pytest.raises(ValueError, match="T_mult"):
        S.CosineWarmRestarts(1.0, 10, T_mult=1.5)


def test_compiled_schedule_is_compiled_once_over_1000_steps():
    torch._dynamo.reset()
    compilations = []

    def counting_backend(graph_module, example_inputs):
        compilations.append(graph_module)
        return graph_module.forward

    schedule = S.Sequential(
        (S.Polynomial(0.0, 1e-3, 100), S.CosineDecay(1e-3, 1e-5, 700), S.Cyclic(1e-5, 1e-4, 50, mode="triangular2")),
        (100, 800),
    )

    @torch.compile(backend=counting_backend, fullgraph=True)
    def apply(step, weight):
        return weight * schedule(step)

    step = torch.zeros((), dtype=torch.int64)
    weight = torch.ones(4)
    for i in range(1000):
        out = apply(step, weight)
        step.add_(1)
        if i in (0, 99, 100, 500, 999):
            assert out[0].item() == pytest.approx(schedule(i), rel=1e-5, abs=1e-10)
    assert len(compilations) == 1
