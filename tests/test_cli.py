"""The ``wse`` command: ``wse schedule`` tables, CSV, plots and errors."""
import csv
import math
import os
import shutil
import subprocess
import sys

import pytest

from wse.cli import main

WARMUP_COSINE = (
    "SequentialLR: [{LinearLR: {initial_learning_rate: 0.0, end_learning_rate: 1.0e-3, total_iters: 100}}, "
    "{CosineDecayLR: {initial_learning_rate: 1.0e-3, end_learning_rate: 1.0e-5, total_iters: 900}}]"
)

BOTH = """
lr:
  SequentialLR:
    - LinearLR: {initial_learning_rate: 0.0, end_learning_rate: 1e-3, total_iters: 10}
    - CosineDecayLR: {initial_learning_rate: 1e-3, end_learning_rate: 0.0, total_iters: 30}
weight_decay:
  CosineDecayWD: {initial_val: 0.1, end_val: 0.01, total_iters: 40}
"""


def warmup_cosine(t):
    if t < 100:
        return 1e-5 * t
    t = min(t - 100, 900)
    return 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi * t / 900))


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def table_rows(out):
    """(step, values..., marked) of each table row."""
    rows = []
    for line in out.splitlines():
        parts = line.replace("*", " ").split()
        if parts and parts[0].isdigit() and len(parts) >= 2 and "steps" not in line:
            rows.append((int(parts[0]), [float(p) for p in parts[1:]], line.startswith("*")))
    return rows


# -- the table -----------------------------------------------------------------------------------


def test_table_shows_start_milestone_and_end_over_the_default_horizon(capsys):
    code, out, err = run(capsys, "schedule", WARMUP_COSINE)
    assert code == 0 and err == ""
    assert "lr: SequentialLR(LinearLR, CosineDecayLR)" in out
    assert "1100 steps (0 to 1099)" in out  # (100 + 900) steps plus 10 %
    rows = table_rows(out)
    steps = [row[0] for row in rows]
    assert 10 <= len(rows) <= 20
    assert steps[0] == 0 and steps[-1] == 1099 and 100 in steps and 1000 in steps
    assert {step for step, _, marked in rows if marked} == {100, 1000}
    for step, (lr,), _ in rows:
        assert lr == pytest.approx(warmup_cosine(step), rel=1e-5, abs=1e-12)


def test_steps_option_sets_the_horizon(capsys):
    code, out, _ = run(capsys, "schedule", WARMUP_COSINE, "--steps", "50")
    assert code == 0
    assert "50 steps (0 to 49)" in out
    assert table_rows(out)[-1][0] == 49


def test_lr_and_weight_decay_together(capsys):
    code, out, _ = run(capsys, "schedule", BOTH)
    assert code == 0
    assert "weight_decay: CosineDecayWD" in out
    assert "44 steps" in out
    first = table_rows(out)[0]
    assert first[0] == 0 and first[1] == [0.0, 0.1]


def test_older_learning_rate_format_and_a_constant_weight_decay(capsys):
    config = "{learning_rate: [{scheduler: Linear, learning_rate: 0, end_learning_rate: 0.1, steps: 10}, {scheduler: Constant, val: 0.1}], wd: 0.05}"
    code, out, _ = run(capsys, "schedule", config, "--steps", "20")
    assert code == 0
    rows = {step: values for step, values, _ in table_rows(out)}
    assert rows[0] == [0.0, 0.05] and rows[19] == [0.1, 0.05]


def test_schedule_without_a_length_gets_a_thousand_steps(capsys):
    code, out, _ = run(capsys, "schedule", "StepLR: {initial_learning_rate: 0.1, step_size: 100, gamma: 0.5}")
    assert code == 0 and "1000 steps" in out


def test_tagged_config_previews_on_a_tagged_group(capsys):
    config = "CosineDecayWD: {initial_val: 0.1, end_val: 0.0, total_iters: 10, param_group_tags: decay}"
    code, out, _ = run(capsys, "schedule", config)
    assert code == 0 and "weight_decay: CosineDecayWD" in out


def test_config_file(tmp_path, capsys):
    path = tmp_path / "schedule.json"
    path.write_text('{"lr": {"ExponentialLR": {"initial_learning_rate": 0.1, "total_iters": 10, "decay_rate": 0.5}}}')
    code, out, _ = run(capsys, "schedule", str(path), "--steps", "21")
    rows = {step: values for step, values, _ in table_rows(out)}
    assert code == 0 and rows[20] == [pytest.approx(0.025)]


# -- CSV and plot ---------------------------------------------------------------------------------


def test_csv_has_every_step_and_an_empty_column_for_what_is_not_scheduled(tmp_path, capsys):
    path = tmp_path / "lr.csv"
    code, out, _ = run(capsys, "schedule", WARMUP_COSINE, "--csv", str(path))
    assert code == 0 and f"wrote 1100 steps to {path}" in out
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["step", "lr", "weight_decay"]
    assert len(rows) == 1101
    for step, lr, weight_decay in rows[1:]:
        assert float(lr) == pytest.approx(warmup_cosine(int(step)), rel=1e-12, abs=1e-18)
        assert weight_decay == ""
    assert [int(r[0]) for r in rows[1:]] == list(range(1100))


def test_csv_with_both_columns(tmp_path, capsys):
    path = tmp_path / "both.csv"
    assert run(capsys, "schedule", BOTH, "--csv", str(path))[0] == 0
    rows = list(csv.reader(open(path, newline="")))
    assert rows[1] == ["0", "0.0", "0.1"]
    assert float(rows[41][2]) == pytest.approx(0.01)


def test_plot_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "schedule.png"
    code, out, _ = run(capsys, "schedule", BOTH, "--plot", str(path))
    assert code == 0 and f"plotted to {path}" in out
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert [p.name for p in tmp_path.iterdir()] == ["schedule.png"]  # no temporary file left


def test_missing_matplotlib_is_a_clear_error_before_any_output(tmp_path, capsys, monkeypatch):
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, module, None)
    path = tmp_path / "schedule.png"
    code, out, err = run(capsys, "schedule", WARMUP_COSINE, "--plot", str(path))
    assert code == 2 and out == ""
    assert "needs matplotlib" in err and "pip install 'wse[plot]'" in err
    assert not path.exists()


def test_unwritable_csv_is_an_error(tmp_path, capsys):
    code, _, err = run(capsys, "schedule", WARMUP_COSINE, "--csv", str(tmp_path / "missing" / "x.csv"))
    assert code == 2 and "cannot write" in err and "Traceback" not in err


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config, expected",
    [
        (
            "SequentialLR: [{LinearLR: {initial_learning_rate: 0, end_learning_rate: 1, total_iters: 5}}, "
            "{CosineDecayLR: {initial_learning_rate: 1, end_learning_rate: 0, totl_iters: 5}}]",
            "SequentialLR[1].CosineDecayLR: unexpected argument 'totl_iters' (did you mean 'total_iters'?)",
        ),
        ("CosineDecyLR: {}", "unknown scheduler 'CosineDecyLR' (did you mean 'CosineDecayLR'"),
        ("LinearLR: {initial_learning_rate: 1, end_learning_rate: 0, total_iters: -5}", "LinearLR: `total_iters` must be > 0"),
        ("{weight_decay: {CosineDecayLR: {initial_learning_rate: 1, end_learning_rate: 0, total_iters: 5}}}", "which schedules `lr`"),
        ("{lr: 0.1, learning_rate: 0.2}", "'learning_rate' and 'lr' both configure `lr`"),
        ("{wd: .nan}", "wd.ConstantWD: `val` must be finite"),
        ("missing.yaml", "missing.yaml: no such config file"),
        ("[1, 2", "not valid YAML"),
    ],
)
def test_bad_config_is_one_line_on_stderr_and_exit_code_2(capsys, config, expected):
    code, out, err = run(capsys, "schedule", config)
    assert code == 2 and out == ""
    assert err.startswith("wse schedule: error: ")
    assert expected in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [[], ["schedule"], ["schedule", "x", "--steps", "0"], ["nope"]])
def test_usage_errors_exit_with_2(capsys, argv):
    code, _, err = run(capsys, *argv)
    assert code == 2 and "usage: wse" in err


def test_help_exits_with_0(capsys):
    code, out, _ = run(capsys, "schedule", "--help")
    assert code == 0 and "configure_scheduler format" in out


class _ClosedPipe:
    """A stdout whose reader has gone away (`wse schedule ... | head`)."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_pipe_ends_the_preview_without_a_traceback(monkeypatch):
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main(["schedule", WARMUP_COSINE]) == 1


@pytest.mark.slow  # a fresh interpreter imports torch and lightning: several seconds
def test_console_script_reports_a_bad_config(tmp_path):
    # The script installed beside this interpreter (a version manager's shim would add seconds).
    beside = os.path.join(os.path.dirname(sys.executable), "wse")
    script = beside if os.path.isfile(beside) else shutil.which("wse")
    if script is None:
        pytest.skip("the wse console script is not installed (pip install -e .)")
    config = tmp_path / "bad.yaml"
    config.write_text("ExponentialLR: {initial_learning_rate: 0.1, decay_rate: 0.5, decay_stesp: 10}\n")
    result = subprocess.run([script, "schedule", str(config)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "ExponentialLR: unexpected argument 'decay_stesp'" in result.stderr
    assert "missing required argument 'total_iters'" in result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_tags_are_reported_by_the_scheduler(capsys):
    config = "ConstantWD: {val: 0.1, param_group_tags: 5}"
    code, _, err = run(capsys, "schedule", config)
    assert code == 2 and "param_group_tags" in err and "Traceback" not in err


@pytest.mark.slow  # a fresh interpreter imports torch: a few seconds
def test_a_preview_imports_neither_lightning_nor_the_compiler(tmp_path):
    # torch._dynamo alone takes seconds to import; a preview has no use for it.
    config = tmp_path / "schedule.yaml"
    config.write_text(BOTH)
    script = (
        "import sys\n"
        "from wse.cli import main\n"
        f"code = main(['schedule', {str(config)!r}])\n"
        "heavy = sorted(m for m in ('torch._dynamo', 'torch._inductor', 'lightning', 'accelerate', 'transformers',"
        " 'matplotlib') if m in sys.modules)\n"
        "print('code', code, 'heavy', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "code 0 heavy []"
    assert "lr: SequentialLR(LinearLR, CosineDecayLR)" in result.stdout
