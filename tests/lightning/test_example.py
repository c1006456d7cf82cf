"""The quick-start example runs and prints its summary."""
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_char_lm_example_trains_and_reports():
    result = subprocess.run(
        [sys.executable, "examples/train_char_lm.py", "--max-steps", "12"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "12 steps in" in result.stdout
    assert "perplexity" in result.stdout and "final lr" in result.stdout and "sample:" in result.stdout
    wse_lines = [line for line in result.stderr.splitlines() if line.startswith(("wse:", "wse device:"))]
    # Quiet by default: one line at the start, one at the end.
    assert len(wse_lines) == 2, result.stderr
    assert wse_lines[0] == "wse: 1 process on cpu; check='strict': step 1 captured, steps 2-4 verified; violations raise."
    assert "12 steps" in wse_lines[1] and "violation" in wse_lines[1]
