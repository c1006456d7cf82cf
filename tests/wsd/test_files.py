"""WSD checkpoint files: names, metadata, weights-only contents, atomic writes, safe reads, shape checks."""
import os
from unittest import mock

import pytest
import torch

from wse.wsd import files, post_decay_name, pre_decay_name


def test_names_follow_pytorch_accelerated():
    assert pre_decay_name(45000) == "checkpoint_45000_wsd_pre_decay"
    assert post_decay_name(50000) == "checkpoint_50000_wsd_post_decay.pt"


def test_metadata_keys():
    info = files.metadata(20, 4, "wsd_post_decay", 40, 0.2)
    assert set(info) == {"step", "current_epoch", "checkpoint_type", "total_steps", "decay_fraction", "timestamp"}
    with pytest.raises(ValueError, match="checkpoint_type"):
        files.metadata(20, 4, "final", 40, 0.2)


def test_post_decay_checkpoint_loads_with_weights_only(tmp_path):
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    checkpoint = files.post_decay_checkpoint(
        model.state_dict(), files.metadata(3, 0, "wsd_post_decay", 3, 0.1), optimizer.state_dict(),
        {"num_updates": 2, "tags": {None, "x"}}, [{"a": 1}, {"b": 2}],
    )
    files.require_weights_only(checkpoint)
    files.atomic_torch_save(checkpoint, tmp_path / "c.pt")
    loaded = torch.load(tmp_path / "c.pt", weights_only=True)
    assert loaded["lr_schedulers"] == [{"a": 1}, {"b": 2}] and loaded["step"] == 3
    assert torch.equal(loaded["model_state_dict"]["weight"], model.weight)


def test_contents_that_need_pickled_code_are_refused_before_writing():
    with pytest.raises(TypeError, match=r"checkpoint\['scheduler_state_dict'\]\['fn'\] is a builtins.function.*save_scheduler"):
        files.require_weights_only({"scheduler_state_dict": {"fn": lambda: 0}}, hint="pass save_scheduler=False")
    with pytest.raises(TypeError, match="frozenset"):
        files.require_weights_only({"tags": frozenset({1})})


def test_an_interrupted_write_leaves_nothing(tmp_path):
    target = tmp_path / "c.pt"
    target.write_bytes(b"older")
    with mock.patch("torch.save", side_effect=KeyboardInterrupt):
        with pytest.raises(KeyboardInterrupt):
            files.atomic_torch_save({"a": 1}, target)
    assert os.listdir(tmp_path) == ["c.pt"] and target.read_bytes() == b"older"


def test_writable_dir(tmp_path):
    assert files.require_writable_dir(tmp_path / "a" / "b").is_dir()
    (tmp_path / "f").write_text("")
    with pytest.raises(PermissionError, match="save_dir .*f/x' is not a writable directory"):
        files.require_writable_dir(tmp_path / "f" / "x")


def test_reading_initial_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        files.load_checkpoint_file(tmp_path / "none.pt")
    with pytest.raises(IsADirectoryError, match="ckpt_path"):
        files.load_checkpoint_file(tmp_path)
    torch.save({"fn": torch.nn.Linear(1, 1)}, tmp_path / "pickled.pt")
    with pytest.raises(ValueError, match=r"cannot be read safely with torch.load\(weights_only=True\)"):
        files.load_checkpoint_file(tmp_path / "pickled.pt")
    assert files.checkpoint_kind({"state_dict": {}, "optimizer_states": []}, tmp_path) == "wsd_pre_decay"
    assert files.checkpoint_kind({"model_state_dict": {}}, tmp_path) == "wsd_post_decay"
    with pytest.raises(ValueError, match="neither a Lightning checkpoint"):
        files.checkpoint_kind({"weights": {}}, tmp_path)


def test_run_shape_checks(tmp_path):
    current = {"w": torch.zeros(2, 3), "b": torch.zeros(2)}
    files.require_same_shape({"w": torch.ones(2, 3), "b": torch.ones(2)}, current, tmp_path)
    with pytest.raises(ValueError, match=r"missing from the checkpoint: \['b'\]; not in the model: \['v'\]"):
        files.require_same_shape({"w": torch.ones(2, 3), "v": torch.ones(2)}, current, tmp_path)
    with pytest.raises(ValueError, match=r"w: checkpoint \(3, 2\) vs model \(2, 3\)"):
        files.require_same_shape({"w": torch.ones(3, 2), "b": torch.ones(2)}, current, tmp_path)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match=r"param groups of \[2\] parameters, this run's optimizer has \[1\]"):
        files.require_same_optimizer_shape({"param_groups": [{"params": [0, 1]}]}, optimizer, tmp_path)


def test_to_cpu_keeps_the_structure():
    tree = {"a": [torch.ones(2), (torch.zeros(1), 3)], "b": "x"}
    moved = files.to_cpu(tree)
    assert moved["b"] == "x" and moved["a"][1][1] == 3 and type(moved["a"][1]) is tuple
    assert torch.equal(moved["a"][0], torch.ones(2)) and moved["a"][0].device.type == "cpu"
