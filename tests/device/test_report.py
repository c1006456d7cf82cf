"""The device's end-of-run report: graph size, memory, capture cost, verified steps, violations."""
import warnings

from wse.device import DeviceReport, StaticGraphWarning

from .helpers import Tiny, batches


def test_the_report_of_a_clean_run():
    tiny = Tiny(optimizer="adamw")
    device = tiny.device()
    for x in batches(7):
        with device.step(x):
            tiny.train_step(x)
    report = device.report()
    assert isinstance(report, DeviceReport)
    assert (report.check, report.steps, report.steps_verified, report.violations) == ("strict", 7, 3, {})
    ops = [event for event in device.graph.events if not isinstance(event[0], str)]
    assert report.graph_ops == len(ops) > 20
    params = list(tiny.model.parameters())
    assert report.parameter_bytes == sum(p.numel() * 4 for p in params)
    # AdamW: exp_avg and exp_avg_sq per parameter, and a float32 step counter per parameter.
    assert report.optimizer_state_bytes == 2 * report.parameter_bytes + 4 * len(params)
    assert 0 < report.capture_seconds < 10
    assert report.compile_seconds is None and report.execution == "eagerly"

    text = report.format()
    lines = text.splitlines()
    assert 3 <= len(lines) <= 6
    assert lines[0] == report.summary() == (
        "wse device: 7 steps, step 1 captured and 3 verified against it: no violations")
    assert lines[1].startswith("checked (check='strict'): step 1 captured; 3 later steps verified against it")
    assert f"{report.graph_ops} operations" in text
    assert "violations: none" in text


def test_the_report_counts_violations_by_kind():
    tiny = Tiny(scheduler="torch")
    device = tiny.device(check="warn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for x in batches(3):
            with device.step(x):
                tiny.train_step(x).item()
    report = device.report()
    assert report.violations == {"host hyperparameter": 3, "host sync": 3}
    assert report.total_violations == 6
    assert "violations: 6 (host hyperparameter: 3, host sync: 3)" in report.format()


def test_the_report_of_a_compiled_run_has_the_compile_cost():
    tiny = Tiny(scheduler=None)
    device = tiny.device(compile=True, compile_backend="aot_eager", verify_steps=1)
    step = device.wrap(tiny.train_step)
    for x in batches(4):
        step(x)
    report = device.report()
    assert report.execution == "compiled"
    assert report.compile_seconds > 0 and report.compiled_graphs >= 1
    assert "compile:" in report.format()
    assert report.summary() == "wse device: 4 steps, step 1 captured and 1 verified against it, then run compiled: no violations"


def run(steps: int, **options):
    tiny = Tiny(optimizer="adamw")
    device = tiny.device(**options)
    for x in batches(steps):
        with device.step(x):
            tiny.train_step(x)
    return device


def test_check_off_says_that_nothing_was_checked():
    device = run(6, check="off")
    report = device.report()
    assert (report.steps, report.steps_checked, report.steps_inputs_compared) == (6, 0, 0)
    assert device.summary() == "wse device: 6 steps, checks off: nothing captured or verified"
    text = report.format()
    assert text.splitlines()[0] == device.summary()
    assert "checked: nothing (check='off' installs nothing" in text
    assert "violations: not looked for (check='off')" in text
    assert "violations: none" not in text


def test_a_clean_checked_run_says_what_was_checked_and_what_was_not():
    device = run(9, verify_steps=2)
    report = device.report()
    # step 1 captured, 2 and 3 verified, the inputs of 4..9 compared
    assert (report.steps_checked, report.steps_unchecked, report.steps_inputs_compared) == (3, 6, 6)
    assert device.summary() == "wse device: 9 steps, step 1 captured and 2 verified against it: no violations"
    text = report.format()
    assert text.splitlines()[0] == device.summary()
    assert "checked (check='strict'): step 1 captured; 2 later steps verified against it" in text
    assert "the inputs of 6 other steps compared with the captured ones" in text
    assert "not checked: the operations, host reads and optimizer state of the 6 steps neither captured nor verified" in text
    assert "host reads in torch.optim (allowed)" in text
    assert "violations: none in the 3 checked steps" in text


def test_verify_every_is_counted_among_the_verified_steps():
    report = run(8, verify_steps=1, verify_every=3).report()
    assert (report.steps_verified, report.steps_inputs_compared) == (3, 4)  # 2, then 3 and 6
    assert "those right after it, then every multiple of 3" in report.format()


def test_a_run_that_ends_before_the_captured_step_says_nothing_was_verified():
    device = run(1, capture_step=2)
    assert device.summary() == "wse device: 1 step, none captured (the device captures step 2): nothing verified"
    text = device.report().format()
    assert "checked (check='strict'): nothing (the device captures step 2; the run had 1)" in text
    assert "violations: none found, but no step was captured or verified" in text


def test_the_summary_of_a_warned_run_counts_the_violations_by_kind():
    tiny = Tiny(scheduler="torch")
    device = tiny.device(check="warn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for x in batches(3):
            with device.step(x):
                tiny.train_step(x).item()
    assert device.summary() == (
        "wse device: 3 steps, step 1 captured and 2 verified against it: "
        "6 violations (host hyperparameter: 3, host sync: 3), warned once per kind"
    )


def test_a_warned_step_whose_inputs_differ_is_counted_as_not_compared():
    tiny = Tiny(optimizer="adamw")
    device = tiny.device(check="warn")
    inputs = batches(4)
    inputs[2] = inputs[2][:6]  # step 3, inside the verification window
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for x in inputs:
            with device.step(x):
                tiny.train_step(x)
    report = device.report()
    assert (report.steps_verified, report.steps_graph_not_compared) == (3, 1)
    assert report.violations == {"shape change": 1}
    assert "the operations of 1 of them not compared (their inputs differed" in report.format()


def test_a_violation_an_integration_reports_is_raised_warned_and_counted_as_the_devices_own():
    import pytest

    from wse.device import ShapeChangeError

    def short_cycle():
        return ShapeChangeError("step 4: this update accumulates 1 batch, not 2", step=4, location=None)

    strict = run(2)
    with pytest.raises(ShapeChangeError, match="accumulates 1 batch"):
        strict.report_violation(short_cycle())
    assert strict.report().violations == {"shape change": 1}

    warned = run(2, check="warn")
    with pytest.warns(StaticGraphWarning, match="accumulates 1 batch"):
        warned.report_violation(short_cycle(), kind="short accumulation cycle")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per kind: the second is only counted
        warned.report_violation(short_cycle(), kind="short accumulation cycle")
    assert warned.summary().endswith("2 violations (shape change: 2), warned once per kind")

    off = run(2, check="off")
    off.report_violation(short_cycle())
    assert off.report().violations == {}
