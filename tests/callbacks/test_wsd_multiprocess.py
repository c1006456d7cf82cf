"""WSDCheckpointCallback with DDP on two CPU processes: every rank takes part, rank 0 writes each file once."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]

FILES = [
    "checkpoint_16_wsd_pre_decay", "checkpoint_20_wsd_post_decay.pt",
    "checkpoint_36_wsd_pre_decay", "checkpoint_40_wsd_post_decay.pt",
]


@pytest.mark.slow
def test_two_processes_with_branches_write_each_checkpoint_once(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "WORLD_SIZE", "NODE_RANK")}
    result = subprocess.run(
        [sys.executable, "-m", "tests.wsd.ddp_script", str(tmp_path)],
        cwd=REPOSITORY, env=environment, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [(r["rank"], r["world_size"]) for r in ranks] == [(0, 2), (1, 2)]
    # The branches ran in both processes with averaged gradients: the runs are the same.
    assert ranks[0]["params"] == ranks[1]["params"]
    assert ranks[0]["lr"] == ranks[1]["lr"] == 0.01  # the run never decayed
    for report in ranks:  # both ranks took part in every save, in the run's order
        assert report["written"] == [FILES[1], FILES[0], FILES[3], FILES[2]]

    # Rank 0 wrote each file once, under a temporary name renamed when complete; rank 1 wrote nothing.
    written = (tmp_path / "writes-rank0.txt").read_text().split()
    assert written == [FILES[1], f".{FILES[0]}.partial", FILES[3], f".{FILES[2]}.partial"]
    assert not (tmp_path / "writes-rank1.txt").exists()
    assert sorted(os.listdir(tmp_path / "checkpoints")) == sorted(FILES)
