"""The rules both integrations enforce are written once: the same errors, strictness and in-graph schedules."""
import subprocess
import sys
import warnings

import pytest
import torch
from accelerate import Accelerator
from lightning.pytorch.utilities.types import LRSchedulerConfig

import wse.accelerate
import wse.lightning
import wse.optim
from wse.lightning.scheduling import make_per_iteration
from wse.rules import (
    LazyOptimizerStateError,
    SchedulerStepError,
    WSERuleWarning,
    enforce,
    schedule_in_graph,
    validate_strict,
)


def _net():
    return torch.nn.Linear(3, 2)


def test_the_errors_of_both_integrations_are_the_same_classes():
    assert wse.lightning.LazyOptimizerStateError is wse.accelerate.LazyOptimizerStateError is LazyOptimizerStateError
    assert wse.lightning.SchedulerStepError is wse.accelerate.SchedulerStepError is SchedulerStepError


def test_one_except_catches_the_setup_refusal_and_the_step_violation_in_either_spelling():
    import wse.device

    setup_refusal = pytest.raises(wse.device.LazyOptimizerStateError, match="dampening=0.5")
    with setup_refusal:
        wse.accelerate.prepare(Accelerator(cpu=True), _net(), torch.optim.SGD(_net().parameters(), lr=0.1,
                                                                              momentum=0.9, dampening=0.5))
    assert isinstance(setup_refusal.excinfo.value, TypeError)  # what it always was
    violation = wse.device.LazyOptimizerStateError("state created late", step=2, location=None)
    try:
        raise violation
    except LazyOptimizerStateError as caught:
        assert caught.step == 2 and isinstance(caught, wse.device.StaticGraphViolation)


def test_except_of_the_lightning_name_catches_the_accelerate_refusal():
    net = _net()
    sgd = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, dampening=0.5)
    try:
        wse.accelerate.prepare(Accelerator(cpu=True), net, sgd)
    except wse.lightning.LazyOptimizerStateError as error:
        assert "dampening=0.5" in str(error) and "wse.accelerate.prepare" in str(error)
    else:
        pytest.fail("wse.accelerate.prepare accepted SGD with dampening")

    net = _net()
    optimizer = torch.optim.AdamW(net.parameters())
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    with pytest.raises(wse.lightning.SchedulerStepError, match="ReduceLROnPlateau"):
        wse.accelerate.prepare(Accelerator(cpu=True), net, optimizer, plateau)


def test_except_of_the_accelerate_name_catches_the_lightning_refusal():
    with pytest.raises(wse.accelerate.LazyOptimizerStateError, match="WSEStrategy\\(strict='warn'\\)"):
        wse.lightning.preinitialize(torch.optim.LBFGS(_net().parameters()))
    optimizer = torch.optim.AdamW(_net().parameters())
    config = LRSchedulerConfig(torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer), monitor="val_loss")
    with pytest.raises(wse.accelerate.SchedulerStepError, match="ReduceLROnPlateau"):
        make_per_iteration([config], strict="raise")


def test_one_filter_on_the_base_category_silences_both_integrations():
    assert issubclass(wse.lightning.WSEStrategyWarning, WSERuleWarning)
    assert issubclass(wse.accelerate.WSEAccelerateWarning, WSERuleWarning)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=WSERuleWarning)
        wse.lightning.preinitialize(torch.optim.LBFGS(_net().parameters()), strict="warn")
        net = _net()
        wse.accelerate.prepare(Accelerator(cpu=True), net, torch.optim.LBFGS(net.parameters()), strict="warn")
    assert not [w for w in caught if issubclass(w.category, WSERuleWarning)]


def test_each_integration_warns_with_its_own_category():
    with pytest.warns(wse.lightning.WSEStrategyWarning, match="LBFGS"):
        wse.lightning.preinitialize(torch.optim.LBFGS(_net().parameters()), strict="warn")
    net = _net()
    with pytest.warns(wse.accelerate.WSEAccelerateWarning, match="to wse.accelerate.prepare"):
        wse.accelerate.prepare(Accelerator(cpu=True), net, torch.optim.LBFGS(net.parameters()), strict="warn")


def test_both_integrations_allocate_the_same_state_for_the_same_optimizer():
    torch.manual_seed(0)
    strategy_net, accelerate_net = _net(), _net()
    accelerate_net.load_state_dict(strategy_net.state_dict())
    by_strategy = torch.optim.NAdam(strategy_net.parameters(), lr=0.01, decoupled_weight_decay=True)
    by_accelerate = torch.optim.NAdam(accelerate_net.parameters(), lr=0.01, decoupled_weight_decay=True)
    assert wse.lightning.preinitialize(by_strategy) == "NAdam: torch layout"
    accelerate_net, by_accelerate = wse.accelerate.prepare(Accelerator(cpu=True), accelerate_net, by_accelerate)
    strategy_state = by_strategy.state_dict()["state"]
    accelerate_state = by_accelerate.optimizer.state_dict()["state"]
    assert strategy_state.keys() == accelerate_state.keys() == {0, 1}
    for index, state in strategy_state.items():
        assert list(state) == list(accelerate_state[index]) == ["step", "mu_product", "exp_avg", "exp_avg_sq"]
        for key, value in state.items():
            other = accelerate_state[index][key]
            assert (value.dtype, value.device, value.shape) == (other.dtype, other.device, other.shape)
            assert torch.equal(value, other)


def test_validate_strict_names_where_it_was_passed():
    assert validate_strict("warn") == "warn"
    with pytest.raises(ValueError, match="^WSEStrategy: `strict` must be one of \\('raise', 'warn', 'off'\\), got 'yes'"):
        wse.lightning.WSEStrategy(strict="yes")
    with pytest.raises(ValueError, match="^wse.accelerate.prepare: `strict` must be one of"):
        wse.accelerate.prepare(Accelerator(cpu=True), _net(), strict="Raise")


def _rule_broken(strict, category=WSERuleWarning):
    enforce(strict, SchedulerStepError, "the rule was broken", category)


def test_enforce_raises_warns_at_the_callers_line_or_stays_silent():
    with pytest.raises(SchedulerStepError, match="^the rule was broken$"):
        _rule_broken("raise")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        _rule_broken("warn")
        _rule_broken("off")
    assert [(w.category, str(w.message), w.filename, w.lineno) for w in caught] == [
        (WSERuleWarning, "the rule was broken", __file__, line)
    ]


def test_schedule_in_graph_switches_the_wse_schedulers_only():
    optimizer = torch.optim.SGD(_net().parameters(), lr=0.1)
    cosine = wse.optim.lr_scheduler.CosineDecayLR(optimizer, 0.1, 0.01, 10)
    step = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2)
    already = wse.optim.lr_scheduler.ConstantLR(optimizer, 0.1, 5)
    already.enable_tensor_values(device=torch.device("cpu"), dtype=torch.float32)
    switched, host_side = schedule_in_graph([cosine, step, already], torch.device("cpu"))
    assert switched == [cosine] and host_side == [step]
    assert cosine.uses_tensor_values
    value = optimizer.param_groups[0]["lr"]
    assert isinstance(value, torch.Tensor) and value.dtype == torch.float64 and value.device.type == "cpu"


def test_the_rules_and_preinitialization_import_no_framework():
    code = (
        "import sys, wse.rules, wse.optim.preinitialization\n"
        "print(sorted(m for m in ('lightning', 'lightning.pytorch', 'accelerate', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
