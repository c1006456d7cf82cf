"""The device's end-of-run report: graph size, memory, capture cost, verified steps, violations."""
import warnings

from wse.device import DeviceReport

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
    assert "7 steps, 3 verified" in lines[0]
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
