"""examples/wsd_checkpoints.py runs and prints its files and losses."""
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wsd_example_writes_and_compares(tmp_path):
    result = subprocess.run(
        [sys.executable, "examples/wsd_checkpoints.py", "--steps", "80", "--checkpoints", "2", "--save-dir", str(tmp_path)],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    names = ["checkpoint_32_wsd_pre_decay", "checkpoint_40_wsd_post_decay.pt",
             "checkpoint_72_wsd_pre_decay", "checkpoint_80_wsd_post_decay.pt"]
    assert all(f"  {name}\n" in result.stdout for name in names)
    rows = [line.split() for line in result.stdout.splitlines() if line.strip().startswith(("40 ", "80 "))]
    assert [row[0] for row in rows] == ["40", "80"] and all(len(row) == 3 for row in rows)
    assert "it never decayed; the branches took 16 decay steps on top of its 80." in result.stdout
