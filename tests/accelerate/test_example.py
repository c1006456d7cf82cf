"""examples/accelerate_char_lm.py runs as a user runs it and prints what it promises."""
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "accelerate_char_lm.py"


@pytest.mark.slow
def test_the_example_trains_with_accumulation_and_prints_one_line_at_each_end(tmp_path):
    command = [sys.executable, str(EXAMPLE), "--max-steps", "8", "--accumulate", "2", "--save", str(tmp_path / "state")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("wse.accelerate on 1 process, cpu: optimizer state allocated [AdamW: preinitialize()]")
    assert lines[1].startswith("wse.accelerate: 8 updates; wse device: 8 steps") and lines[1].endswith("no violations")
    assert "8 updates on 1 process in" in result.stdout
    assert (tmp_path / "state" / "wse_accelerate.json").is_file()
