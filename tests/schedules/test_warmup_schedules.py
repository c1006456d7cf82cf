"""Anneal, Ramp, WarmupAnneal and WarmupStableDecay: closed forms, both paths, errors."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wse import schedules as S

# Learning-rate-like values: zero or a normal positive float (denormals lose meaning on tensors).
values = st.one_of(st.just(0.0), st.floats(min_value=1e-8, max_value=10.0))
steps = st.integers(min_value=1, max_value=3000)


@st.composite
def warmup_anneals(draw):
    end = draw(values)
    peak = draw(st.floats(min_value=end, max_value=end + 10.0))
    warmup = draw(st.integers(0, 500))
    decay = draw(st.integers(warmup + 1, 3000))
    style = draw(st.sampled_from(["linear", "cosine", "inverse-square-root", "constant", "WSD"]))
    return S.WarmupAnneal(
        draw(st.floats(0.0, peak)), peak, end, warmup, decay, style,
        draw(st.integers(0, decay)), draw(st.sampled_from(["linear", "cosine", "exponential", "minus_sqrt"])),
    )


@st.composite
def warmup_stable_decays(draw):
    count = draw(st.integers(1, 4))
    total = draw(st.integers(2 ** (count - 1), 3000))
    return S.WarmupStableDecay(
        draw(values), tuple(S.geometric_checkpoints(total, count)),
        draw(st.floats(0.0, 1.0 / 3 if count > 1 else 1.0)), draw(st.floats(0.0, 1.0)),
        draw(st.sampled_from(["minus_sqrt", "inverse_proportional"])), draw(st.integers(0, 400)), draw(values),
    )


SCHEDULES = st.one_of(
    st.builds(S.Anneal, values, values, steps, st.sampled_from(S.anneal.ANNEAL_SHAPES), st.floats(0.25, 4.0)),
    st.builds(S.Ramp, values, values, steps, st.sampled_from(S.anneal.RAMP_SHAPES)),
    warmup_anneals(),
    warmup_stable_decays(),
)


@settings(max_examples=200, deadline=None)
@given(schedule=SCHEDULES, step=st.integers(0, 5000))
def test_host_and_tensor_paths_agree(schedule, step):
    host = schedule(step)
    tensor = schedule(torch.tensor(step, dtype=torch.float64))
    assert isinstance(host, float) and isinstance(tensor, torch.Tensor) and tensor.dim() == 0
    assert tensor.item() == pytest.approx(host, rel=1e-12, abs=1e-15)


def test_anneal_shapes():
    r = 0.25
    expected = {
        "linear": 1 - r,
        "cosine": 0.5 * (1 + math.cos(math.pi * r)),
        "exponential": 2 * 0.5**r - 1,
        "minus_sqrt": 1 - math.sqrt(r),
    }
    for shape, remaining in expected.items():
        anneal = S.Anneal(3.0, 1.0, 100, shape)
        assert anneal(0) == 3.0 and anneal(100) == 1.0 and anneal(500) == 1.0
        assert anneal(25) == pytest.approx(1.0 + 2.0 * remaining)
    harmonic = S.Anneal(2.0, 0.5, 100, "inverse_proportional")
    assert harmonic(25) == pytest.approx(1 / (0.75 / 2.0 + 0.25 / 0.5)) and harmonic(100) == pytest.approx(0.5)
    to_zero = S.Anneal(2.0, 0.0, 100, "inverse_proportional")
    assert to_zero(0) == 2.0 and to_zero(1) == 0.0 and to_zero(torch.tensor(0.0)).item() == 2.0
    assert S.Anneal(0.0, 0.0, 10, "inverse_proportional")(5) == 0.0
    k_decay = S.Anneal(1.0, 0.0, 100, "cosine", k_decay=2.0)
    assert k_decay(50) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.25)))


def test_ramp_shapes():
    assert S.Ramp(0.1, 0.5, 100)(25) == pytest.approx(0.2)
    assert S.Ramp(0.0, 1.0, 100, "cosine")(25) == pytest.approx(0.5 * (math.cos(math.pi * 0.75) + 1))
    assert S.Ramp(0.1, 0.5, 100)(1000) == pytest.approx(0.5)


def test_warmup_anneal_phases():
    cosine = S.WarmupAnneal(0.0, 1.0, 0.1, 10, 110, "cosine")
    assert cosine(5) == 0.5 and cosine(10) == 1.0 and cosine(60) == pytest.approx(0.55) and cosine(111) == 0.1
    isqrt = S.WarmupAnneal(0.0, 1.0, 0.3, 4, 100, "inverse-square-root")
    assert isqrt(16) == 0.5 and isqrt(99) == 0.3 and S.WarmupAnneal(0.0, 1.0, 0.0, 0, 10, "inverse-square-root")(0) == 1.0
    constant = S.WarmupAnneal(0.5, 1.0, 0.0, 10, 20, "constant")
    assert constant(0) == 0.5 and constant(1000) == 1.0
    wsd = S.WarmupAnneal(0.0, 1.0, 0.0, 10, 100, "WSD", 20, "linear")
    assert wsd(80) == 1.0 and wsd(90) == 0.5 and wsd(100) == 0.0 and wsd(101) == 0.0
    assert S.WarmupAnneal(0.0, 1.0, 0.0, 10, 100, "WSD", 0, "linear")(100) == 1.0


def test_warmup_stable_decay_phases():
    schedule = S.WarmupStableDecay(2.0, (100, 200, 400), 0.1, 0.01, "minus_sqrt", warmup_steps=20, warmup_start=0.0)
    assert schedule(10) == 1.0 and schedule(20) == 2.0 and schedule(89) == 2.0
    assert schedule(90) == 2.0 and schedule(95) == pytest.approx(2.0 * (0.01 + 0.99 * (1 - math.sqrt(0.5))))
    assert schedule(100) == 2.0 and schedule(380) == 2.0 and schedule(399) < 0.1 and schedule(400) == 0.02
    assert S.decay_periods((100, 200, 400), 0.1)[2] == (200, 400, 20, 380)


@pytest.mark.parametrize(
    "total, count, expected",
    [(1000, 1, [1000]), (1000, 2, [500, 1000]), (1003, 3, [250, 500, 1000]), (200, 4, [25, 50, 100, 200])],
)
def test_geometric_checkpoints(total, count, expected):
    assert S.geometric_checkpoints(total, count) == expected


def test_bad_arguments():
    with pytest.raises(ValueError, match="Did you mean 'cosine'"):
        S.Anneal(1.0, 0.0, 10, "cos")
    with pytest.raises(ValueError, match="total_steps"):
        S.Ramp(0.0, 1.0, 0)
    with pytest.raises(ValueError, match="must be >= 0"):
        S.Anneal(1.0, -1.0, 10, "inverse_proportional")
    with pytest.raises(ValueError, match="smaller than `decay_steps`"):
        S.WarmupAnneal(0.0, 1.0, 0.0, 10, 10)
    with pytest.raises(ValueError, match="wsd_decay_steps"):
        S.WarmupAnneal(0.0, 1.0, 0.0, 1, 10, "WSD")
    with pytest.raises(ValueError, match="Did you mean 'minus_sqrt'"):
        S.WarmupStableDecay(1.0, (10,), decay_shape="sqrt")
    with pytest.raises(ValueError, match="strictly increasing"):
        S.WarmupStableDecay(1.0, (10, 10))
    with pytest.raises(ValueError, match="at least 8 steps"):
        S.geometric_checkpoints(7, 4)


def test_compiled_schedules_are_compiled_once():
    torch._dynamo.reset()
    compilations = []

    def counting_backend(graph_module, example_inputs):
        compilations.append(graph_module)
        return graph_module.forward

    lr = S.WarmupStableDecay(1e-3, (250, 500, 1000), 0.2, 0.01, "inverse_proportional", warmup_steps=50)
    wd = S.WarmupAnneal(0.0, 0.1, 0.01, 20, 800, "WSD", 200, "exponential")

    @torch.compile(backend=counting_backend, fullgraph=True)
    def apply(step, weight):
        return weight * lr(step) + wd(step)

    step = torch.zeros((), dtype=torch.float64)
    weight = torch.ones(4, dtype=torch.float64)
    for i in range(1100):
        out = apply(step, weight)
        step.add_(1)
        if i in (0, 49, 50, 240, 499, 700, 999, 1050):
            assert out[0].item() == pytest.approx(lr(i) + wd(i), rel=1e-12)
    assert len(compilations) == 1
