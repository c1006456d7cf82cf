"""examples/wsd_checkpoints.py runs and prints its files and losses (in this process, as its own script)."""
import logging
import runpy
import sys
from pathlib import Path

import pytest
import torch

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["auto", "wse"])
def test_wsd_example_writes_and_compares(tmp_path, monkeypatch, capsys, strategy):
    arguments = ["--steps", "40", "--checkpoints", "2", "--save-dir", str(tmp_path), "--strategy", strategy]
    monkeypatch.setattr(sys, "argv", ["wsd_checkpoints.py", *arguments])
    threads = torch.get_num_threads()
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level  # the script quiets Lightning; the tests after it should not inherit that
    torch.set_num_threads(1)  # a tiny model: threads only contend
    try:
        runpy.run_path(str(REPOSITORY / "examples" / "wsd_checkpoints.py"), run_name="__main__")
    finally:
        torch.set_num_threads(threads)
        lightning_log.setLevel(level)
    out = capsys.readouterr().out
    names = ["checkpoint_16_wsd_pre_decay", "checkpoint_20_wsd_post_decay.pt",
             "checkpoint_36_wsd_pre_decay", "checkpoint_40_wsd_post_decay.pt"]
    assert f"wrote to {tmp_path}:\n" + "".join(f"  {name}\n" for name in names) in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("20 ", "40 "))]
    assert [row[0] for row in rows] == ["20", "40"] and all(len(row) == 3 for row in rows)
    assert all(float(value) > 0 for row in rows for value in row[1:])
    assert "it never decayed; the branches took 8 decay steps on top of its 40." in out
    if strategy == "wse":
        assert "wse device: 40 steps, step 1 captured and 3 verified against it: no violations" in out
