"""Two CPU processes (gloo): the schedules step once per update on every rank, not num_processes times."""
import json
import os
import socket
import tempfile

import pytest
import torch
from accelerate import Accelerator
from accelerate.utils import PrepareForLaunch, patch_environment
from torch.multiprocessing import start_processes

import wse.accelerate

from .helpers import LR0, LR1, TOTAL, WD0, WD1, adamw_with_schedules, cosine, loader, model, value


def train_on_each_rank(output_dir: str) -> None:
    accelerator = Accelerator(gradient_accumulation_steps=2)
    net = model()
    optimizer, lr, wd = adamw_with_schedules(net)
    net, optimizer, data, lr, wd = wse.accelerate.prepare(accelerator, net, optimizer, loader(), lr, wd)
    run = wse.accelerate.state(accelerator)
    seen = []
    for epoch in range(2):
        for x, y in data:
            with accelerator.accumulate(net):
                accelerator.backward(torch.nn.functional.mse_loss(net(x), y))
                optimizer.step()
                lr.step()  # the Accelerate idiom: called on every micro-batch of every rank
                optimizer.zero_grad()
            if accelerator.sync_gradients:
                group = optimizer.param_groups[0]
                seen.append([run.global_step, value(group["lr"]), value(group["weight_decay"])])
    accelerator.end_training()
    report = run.device.report()
    result = {
        "processes": accelerator.num_processes,
        "seen": seen,
        "last_epoch": [lr.last_epoch, wd.last_epoch],
        "device": [report.steps, report.steps_verified, report.captured_step, report.total_violations],
        "weight": accelerator.unwrap_model(net)[0].weight.flatten().tolist(),
    }
    with open(os.path.join(output_dir, f"rank{accelerator.process_index}.json"), "w") as handle:
        json.dump(result, handle)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_on_cpu(function, args, num_processes: int = 2) -> None:
    """``accelerate.debug_launcher``, but with fresh (spawned) processes instead of forks.

    A forked child inherits the parent's OpenMP thread pool, which is not fork-safe: after
    other tests have run parallel CPU ops in the parent, the child hangs in its first op.
    """
    with tempfile.TemporaryDirectory() as scratch, patch_environment(
        world_size=num_processes,
        master_addr="127.0.0.1",
        master_port=str(_free_port()),
        accelerate_mixed_precision="no",
        accelerate_debug_rdv_file=os.path.join(scratch, "rendezvous"),
        accelerate_use_cpu="yes",
        gloo_socket_ifname="lo",
    ):
        start_processes(PrepareForLaunch(function, debug=True), args=args, nprocs=num_processes, start_method="spawn")


@pytest.mark.slow
def test_two_processes_step_each_schedule_once_per_update_with_identical_values(tmp_path):
    launch_on_cpu(train_on_each_rank, args=(str(tmp_path),))
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert ranks[0]["processes"] == ranks[1]["processes"] == 2
    # 96 samples, batches of 8 split over 2 ranks, 2 micro-batches per update: 3 updates per epoch.
    assert ranks[0]["seen"] == ranks[1]["seen"]
    assert [done for done, _, _ in ranks[0]["seen"]] == list(range(1, 7))
    for done, lr_next, wd_next in ranks[0]["seen"]:
        assert lr_next == pytest.approx(cosine(LR0, LR1, TOTAL, done), rel=1e-12)
        assert wd_next == pytest.approx(cosine(WD0, WD1, TOTAL, done), rel=1e-12)
    assert ranks[0]["last_epoch"] == ranks[1]["last_epoch"] == [6, 6]
    # DDP re-buckets after its first iteration: step 2 is captured, the next 3 verified.
    assert ranks[0]["device"] == ranks[1]["device"] == [6, 3, 2, 0]
    assert ranks[0]["weight"] == ranks[1]["weight"]
