"""Untrusted checkpoints: no pickled code runs, bad input is one clear error, nothing is half-written."""
import os
import pathlib

import pytest
import torch
from safetensors.torch import save_file

from wse.checkpoint import CheckpointError, convert, detect, load
from wse.checkpoint.names import RenameRules

MARKER = "pwned"


class Payload:
    """Unpickling this object creates a file: the sign that pickled code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def state():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2).state_dict()


def test_a_malicious_pickle_is_not_executed(tmp_path):
    marker = tmp_path / MARKER
    torch.save({"model": state(), "step": 3, "extra": Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match=r"evil\.pt: refused to load.*--unsafe-load"):
        load(tmp_path / "evil.pt")
    with pytest.raises(CheckpointError):
        convert(tmp_path / "evil.pt", tmp_path / "out.safetensors", to="safetensors")
    assert not marker.exists()
    assert not (tmp_path / "out.safetensors").exists()
    # the user's explicit choice: then it runs, as torch.load(weights_only=False) would
    load(tmp_path / "evil.pt", unsafe=True)
    assert marker.exists()


def test_a_malicious_lightning_checkpoint_is_not_executed(tmp_path):
    marker = tmp_path / MARKER
    torch.save({"state_dict": state(), "pytorch-lightning_version": "2.6.6", "hyper_parameters": {"x": Payload(marker)}},
               tmp_path / "evil.ckpt")
    assert detect(tmp_path / "evil.ckpt") == "lightning"  # detection reads the pickle's bytes, never runs it
    with pytest.raises(CheckpointError, match="refused to load"):
        load(tmp_path / "evil.ckpt")
    assert not marker.exists()


def test_a_pickle_in_an_hf_trainer_directory_is_skipped_with_a_note(tmp_path):
    marker = tmp_path / MARKER
    folder = tmp_path / "checkpoint-1"
    folder.mkdir()
    save_file(state(), str(folder / "model.safetensors"))
    (folder / "trainer_state.json").write_text('{"global_step": 1, "epoch": 1.0}')
    torch.save(Payload(marker), folder / "training_args.bin")
    checkpoint = load(folder, param_names=["weight", "bias"])
    assert not marker.exists()
    assert any("training_args.bin: skipped" in note and "--unsafe-load" in note for note in checkpoint.metadata["notes"])
    assert checkpoint.step == 1 and set(checkpoint.model) == {"weight", "bias"}


def test_a_truncated_file_names_the_file(tmp_path):
    torch.save({"model": state(), "step": 1}, tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pt"):
        load(tmp_path / "cut.pt", format="torch")
    save_file(state(), str(tmp_path / "full.safetensors"))
    data = (tmp_path / "full.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-8])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors: truncated"):
        load(tmp_path / "cut.safetensors", format="safetensors")


def test_an_unknown_or_wrong_format_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a checkpoint in any known format.*--from"):
        detect(tmp_path / "notes.txt")
    with pytest.raises(CheckpointError, match="no such file"):
        load(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="unknown checkpoint format 'keras'"):
        load(tmp_path / "notes.txt", format="keras")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="holds a list"):
        load(tmp_path / "list.pt")


def test_an_hf_directory_without_a_config_names_the_option(tmp_path):
    torch.save(state(), tmp_path / "weights.pt")
    with pytest.raises(CheckpointError, match=r"needs the model's config\.json.*--config"):
        convert(tmp_path / "weights.pt", tmp_path / "hf", to="hf")
    assert sorted(os.listdir(tmp_path)) == ["weights.pt"]  # no directory, no temporary left


def test_an_existing_destination_is_not_overwritten(tmp_path):
    torch.save(state(), tmp_path / "weights.pt")
    (tmp_path / "out.safetensors").write_text("keep me")
    with pytest.raises(CheckpointError, match="already exists.*--overwrite"):
        convert(tmp_path / "weights.pt", tmp_path / "out.safetensors", to="safetensors")
    assert (tmp_path / "out.safetensors").read_text() == "keep me"
    convert(tmp_path / "weights.pt", tmp_path / "out.safetensors", to="safetensors", overwrite=True)
    assert detect(tmp_path / "out.safetensors") == "safetensors"


def test_optimizer_state_that_does_not_fit_the_parameter_order_is_refused(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    optimizer = torch.optim.Adam(net.parameters())
    net(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict()}, tmp_path / "src.pt")
    with pytest.raises(CheckpointError, match=r"'exp_avg' of '0.bias' has shape \(3, 4\), the parameter \(3,\)"):
        load(tmp_path / "src.pt", param_names=["0.bias", "0.weight", "1.weight", "1.bias"])
    with pytest.raises(CheckpointError, match="holds 4 parameters.*lists 3"):
        load(tmp_path / "src.pt", param_names=["0.weight", "0.bias", "1.weight"])


def test_rename_rules_are_strict_and_list_unmatched_keys(tmp_path):
    torch.save({"encoder.weight": torch.ones(2), "encoder.bias": torch.ones(2), "head.weight": torch.ones(2)},
               tmp_path / "src.pt")
    rules = tmp_path / "rules.yaml"
    rules.write_text("- ['^encoder\\.', 'backbone.']\n")
    with pytest.raises(CheckpointError, match=r"1 key\(s\) match no rename rule.*\n  head\.weight"):
        convert(tmp_path / "src.pt", tmp_path / "out.pt", to="torch", rename=rules)
    assert not (tmp_path / "out.pt").exists()
    rules.write_text("rules:\n  - ['^encoder\\.', 'backbone.']\n  - ['^head\\.weight$', null]\nstrict: true\n")
    convert(tmp_path / "src.pt", tmp_path / "out.pt", to="torch", rename=rules)
    assert sorted(torch.load(tmp_path / "out.pt", weights_only=True)) == ["backbone.bias", "backbone.weight"]
    with pytest.raises(CheckpointError, match="would both be renamed"):
        RenameRules([(r"\.(weight|bias)$", ".x")]).mapping(["a.weight", "a.bias"])
    with pytest.raises(CheckpointError, match="not a regular expression"):
        RenameRules([("(", "")])


def test_param_groups_that_several_groupings_explain_are_not_guessed(tmp_path):
    # four parameters of one shape in two groups: consecutive or interleaved? The file does not say.
    net = torch.nn.ParameterList([torch.nn.Parameter(torch.randn(2, 2)) for _ in range(4)])
    optimizer = torch.optim.SGD([{"params": [net[0], net[2]]}, {"params": [net[1], net[3]]}], lr=0.1, momentum=0.9)
    sum(p.sum() for p in net).backward()
    optimizer.step()
    torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict()}, tmp_path / "src.pt")
    with pytest.raises(CheckpointError, match="shapes fit more than one grouping.*one list of names per group"):
        load(tmp_path / "src.pt")
    checkpoint = load(tmp_path / "src.pt", param_names=[["0", "2"], ["1", "3"]])
    assert [group["params"] for group in checkpoint.optimizers[0].param_groups] == [["0", "2"], ["1", "3"]]


def test_param_groups_that_shapes_tell_apart_are_named(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    # groups interleaved against model order: the weights, then the biases
    optimizer = torch.optim.Adam([{"params": [net[0].weight, net[1].weight]}, {"params": [net[0].bias, net[1].bias]}])
    net(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict()}, tmp_path / "src.pt")
    groups = load(tmp_path / "src.pt").optimizers[0].param_groups
    assert [group["params"] for group in groups] == [["0.weight", "1.weight"], ["0.bias", "1.bias"]]


def test_tensors_that_do_not_fit_the_configs_model_are_refused(tmp_path):
    from .helpers import gpt2

    model = gpt2()
    config = model.config.to_dict()
    config["architectures"] = ["GPT2LMHeadModel"]
    state = {f"net.{key}": value for key, value in model.state_dict().items()}  # self.net, not self.model
    torch.save(state, tmp_path / "prefixed.pt")
    with pytest.raises(CheckpointError, match=r"do not fit the model of config.json \(GPT2LMHeadModel\): missing "
                                              r"transformer.h.0.attn.c_attn.bias, .*; unexpected net.lm_head.weight"):
        convert(tmp_path / "prefixed.pt", tmp_path / "hf", to="hf", config=config)
    assert not (tmp_path / "hf").exists()
    state = dict(model.state_dict())
    state["transformer.wpe.weight"] = torch.zeros(4, 16)
    torch.save(state, tmp_path / "short.pt")
    with pytest.raises(CheckpointError, match=r"'transformer.wpe.weight' has shape \(4, 16\), the model of config.json \(8, 16\)"):
        convert(tmp_path / "short.pt", tmp_path / "hf", to="hf", config=config)
