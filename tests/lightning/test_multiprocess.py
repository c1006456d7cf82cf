"""``Trainer(strategy="wse", accelerator="cpu", devices=2)`` trains data-parallel in two processes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import cosine, linear

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_processes_share_schedules_and_parameters_and_write_checkpoints_once(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "WORLD_SIZE", "NODE_RANK")}
    result = subprocess.run(
        [sys.executable, "-m", "tests.lightning.ddp_script", str(tmp_path)],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    # The start line (rank 0 only) says which step is captured.
    starts = [line for line in result.stderr.splitlines() if line.startswith("wse:")]
    assert starts[0] == (
        "wse: 2 processes (DDP, gloo) on cpu; check='strict': step 2 captured (DDP re-buckets the gradients "
        "during step 1, which runs unchecked), steps 3-5 verified; violations raise."
    ), result.stderr
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]

    for rank, report in enumerate(ranks):
        assert (report["rank"], report["world_size"]) == (rank, 2)
        assert report["backend"] == "gloo" and report["wrapped"] == "DistributedDataParallel"
        expected_lr = [linear(0.0, 0.01, 2, t) if t < 2 else cosine(0.01, 0.001, 4, t - 2) for t in range(6)]
        assert report["lrs"] == pytest.approx(expected_lr, rel=1e-12, abs=1e-15)
        assert report["wds"] == pytest.approx([cosine(0.1, 0.0, 6, t) for t in range(6)], rel=1e-12, abs=1e-15)
    assert ranks[0]["lrs"] == ranks[1]["lrs"] and ranks[0]["wds"] == ranks[1]["wds"]
    # Each rank checks its own step; DDP re-buckets the gradients after its first
    # iteration, so the device captures step 2 and verifies the next three.
    for report in ranks:
        device = report["device"]
        assert (device["steps"], device["captured_step"], device["verified"]) == (6, 2, 3)
        assert device["violations"] == {} and device["graph_ops"] > 50
    assert ranks[0]["device"]["graph_ops"] == ranks[1]["device"]["graph_ops"]
    assert ranks[0]["params"] == ranks[1]["params"], "gradients were averaged across the processes"
    assert ranks[0]["params"] != ranks[0]["initial"]

    written = (tmp_path / "writes-rank0.txt").read_text().split()
    assert written == ["epoch=0-step=3.ckpt", "epoch=1-step=6.ckpt"]
    assert not (tmp_path / "writes-rank1.txt").exists()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == written
