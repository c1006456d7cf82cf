"""ParamGroupMonitor: names, skipped keys, tensor values read without host sync at snapshot time."""
import sys
import subprocess

import pytest
import torch

from wse.monitoring import ParamGroupMonitor


def _params(n):
    return [torch.nn.Parameter(torch.zeros(2)) for _ in range(n)]


def test_one_group_one_optimizer_is_named_by_its_class():
    optimizer = torch.optim.AdamW(_params(1), lr=0.01, weight_decay=0.1, betas=(0.8, 0.99))
    monitor = ParamGroupMonitor([optimizer], log_momentum=True)
    assert monitor.read() == {"lr-AdamW": 0.01, "lr-AdamW-momentum": 0.8, "lr-AdamW-weight_decay": 0.1}


def test_groups_are_named_by_name_then_tags_then_position():
    p = _params(4)
    optimizer = torch.optim.SGD(
        [
            {"params": [p[0]], "name": "head"},
            {"params": [p[1]], "tags": {"norm", "bias"}, "lr": 0.2},
            {"params": [p[2]], "tags": "decay", "lr": 0.3},
            {"params": [p[3]], "lr": 0.4},
        ],
        lr=0.1,
    )
    monitor = ParamGroupMonitor(optimizer, log_weight_decay=False)
    assert monitor.read() == {"lr-SGD/head": 0.1, "lr-SGD/bias+norm": 0.2, "lr-SGD/decay": 0.3, "lr-SGD/pg4": 0.4}


def test_groups_sharing_tags_add_their_position():
    p = _params(2)
    optimizer = torch.optim.SGD([{"params": [p[0]], "tags": "decay"}, {"params": [p[1]], "tags": ["decay"]}], lr=0.1)
    assert ParamGroupMonitor(optimizer, log_weight_decay=False).names == ["lr-SGD/decay-pg1", "lr-SGD/decay-pg2"]


def test_second_optimizer_of_a_class_counts_and_a_repeated_optimizer_is_read_once():
    first, second, other = torch.optim.Adam(_params(1)), torch.optim.Adam(_params(1)), torch.optim.SGD(_params(1), lr=1.0)
    monitor = ParamGroupMonitor([first, other, second, first], log_weight_decay=False)
    assert monitor.names == ["lr-Adam", "lr-SGD", "lr-Adam-1"]


def test_given_names_replace_the_prefix_and_do_not_count():
    first, second = torch.optim.Adam(_params(1)), torch.optim.Adam(_params(1))
    monitor = ParamGroupMonitor([first, second], log_weight_decay=False, names=["encoder", None])
    assert monitor.names == ["encoder", "lr-Adam"]


def test_missing_keys_are_skipped_not_an_error():
    class Bare(torch.optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, {"lr": 0.5})

    monitor = ParamGroupMonitor([Bare(_params(1))], log_momentum=True, log_weight_decay=True)
    assert monitor.read() == {"lr-Bare": 0.5}


def test_duplicate_group_names_are_a_clear_error():
    p = _params(2)
    optimizer = torch.optim.SGD([{"params": [p[0]], "name": "x"}, {"params": [p[1]], "name": "x"}], lr=0.1)
    with pytest.raises(ValueError, match="duplicated param group names.*'x'"):
        ParamGroupMonitor(optimizer)


def test_not_an_optimizer_is_a_clear_error():
    with pytest.raises(TypeError, match="reads optimizers"):
        ParamGroupMonitor([object()])


def test_tensor_values_are_copied_at_snapshot_and_read_later():
    lr, wd = torch.tensor(0.25), torch.tensor(0.5, dtype=torch.float64)
    optimizer = torch.optim.SGD(_params(1), lr=lr, weight_decay=0.0)
    optimizer.param_groups[0]["weight_decay"] = wd
    monitor = ParamGroupMonitor([optimizer])
    snapshot = monitor.snapshot()
    lr.fill_(1.0)  # a scheduler writing the next step's value in place
    wd.fill_(2.0)
    assert snapshot.values() == {"lr-SGD": 0.25, "lr-SGD-weight_decay": 0.5}
    assert monitor.read() == {"lr-SGD": 1.0, "lr-SGD-weight_decay": 2.0}


def test_deferred_reads_keep_the_series_order_across_dtypes(monkeypatch):
    """The path of accelerator tensors (one stack per device and dtype, read later), taken here on the CPU."""
    monkeypatch.setattr("wse.monitoring.reading.READ_AT_ONCE", frozenset())
    p = _params(3)
    optimizer = torch.optim.SGD(
        [
            {"params": [p[0]], "lr": torch.tensor(0.5), "weight_decay": torch.tensor(0.25, dtype=torch.float64)},
            {"params": [p[1]], "lr": 0.125, "weight_decay": 0.0},
            {"params": [p[2]], "lr": torch.tensor(2.0, dtype=torch.float64), "weight_decay": torch.tensor(1.0)},
        ],
        lr=0.1,
    )
    snapshot = ParamGroupMonitor([optimizer]).snapshot()
    assert "2 device read(s) pending" in repr(snapshot)  # float32 and float64
    for group in optimizer.param_groups:
        for key in ("lr", "weight_decay"):
            if isinstance(group[key], torch.Tensor):
                group[key].fill_(-1.0)
    assert snapshot.values() == {
        "lr-SGD/pg1": 0.5, "lr-SGD/pg1-weight_decay": 0.25,
        "lr-SGD/pg2": 0.125, "lr-SGD/pg2-weight_decay": 0.0,
        "lr-SGD/pg3": 2.0, "lr-SGD/pg3-weight_decay": 1.0,
    }
    assert list(snapshot.values()) == list(ParamGroupMonitor([optimizer]).names)


def test_added_param_groups_get_series():
    p = _params(2)
    optimizer = torch.optim.SGD([p[0]], lr=0.1)
    monitor = ParamGroupMonitor([optimizer], log_weight_decay=False)
    assert monitor.names == ["lr-SGD"]
    optimizer.add_param_group({"params": [p[1]], "lr": 0.2})
    assert monitor.read() == {"lr-SGD/pg1": 0.1, "lr-SGD/pg2": 0.2}


def test_a_wrapper_holding_the_optimizer_is_unwrapped():
    class Wrapper:
        def __init__(self, optimizer):
            self.optimizer = optimizer

        @property
        def param_groups(self):
            return self.optimizer.param_groups

    monitor = ParamGroupMonitor([Wrapper(torch.optim.RMSprop(_params(1), lr=0.3))], log_weight_decay=False)
    assert monitor.read() == {"lr-RMSprop": 0.3}


def test_importing_the_core_imports_no_framework():
    code = (
        "import sys, wse.monitoring; "
        "bad = [m for m in ('lightning', 'pytorch_lightning', 'accelerate', 'transformers') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.gpu
def test_cuda_values_are_copied_without_a_host_sync():
    lr = torch.tensor(0.25, device="cuda")
    wd = torch.tensor(0.5, device="cuda", dtype=torch.float64)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2, device="cuda"))], lr=lr, weight_decay=0.0)
    optimizer.param_groups[0]["weight_decay"] = wd
    monitor = ParamGroupMonitor([optimizer])
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        snapshot = monitor.snapshot()  # a synchronising op here would raise
        lr.fill_(1.0)
        wd.fill_(2.0)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert snapshot.values() == {"lr-SGD": 0.25, "lr-SGD-weight_decay": 0.5}
