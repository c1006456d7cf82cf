"""Optimizer state between layouts: the translated state continues as the source did.

Each source optimizer is a real library's (torch.optim, transformers 4.46's AdamW through a
committed fixture, transformers' Adafactor, wse.optim); each translated state is loaded into
the target's optimizer and must continue as the source did.
"""
import json
import os

import pytest
import torch

import wse.optim
from wse.checkpoint import CheckpointError, convert, load, save

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def tiny_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))


def batch(step):
    generator = torch.Generator().manual_seed(100 + step)
    return torch.randn(8, 4, generator=generator), torch.randn(8, 2, generator=generator)


def train(net, optimizer, steps, start=0):
    losses = []
    for step in range(start, start + steps):
        x, y = batch(step)
        loss = torch.nn.functional.mse_loss(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def save_training_dict(path, net, optimizer, step):
    torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "step": step}, path)


def resume(path, make_optimizer):
    """A fresh net and optimizer loaded from a torch training dict."""
    payload = torch.load(path, weights_only=True)
    net = tiny_net(seed=9)
    net.load_state_dict(payload["model"])
    optimizer = make_optimizer(net.parameters())
    optimizer.load_state_dict(payload["optimizer"])
    return net, optimizer


# -- transformers 4.46 AdamW (integer step, correct_bias, eps added to sqrt(v)) ------------------

LEGACY = os.path.join(FIXTURES, "legacy_adamw")


def test_legacy_transformers_adamw_is_recognised_with_its_conventions():
    checkpoint = load(os.path.join(LEGACY, "checkpoint.pt"))
    (opt,) = checkpoint.optimizers
    assert opt.algorithm == "AdamW"
    assert opt.conventions == {"eps": "sqrt_v", "weight_decay": "after_update"}
    assert checkpoint.step == 3
    first = opt.state["0.weight"]
    assert first["step"].dtype == torch.float32 and first["step"].dim() == 0 and float(first["step"]) == 3.0
    assert opt.param_groups[0]["params"] == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_legacy_adamw_into_torch_adamw_is_refused_unless_approximate(tmp_path):
    with pytest.raises(CheckpointError, match=r"not torch's \(eps added to sqrt\(v\).*after the update\).*"
                                              "optimizer-layout transformers"):
        convert(os.path.join(LEGACY, "checkpoint.pt"), tmp_path / "out.pt", to="torch")
    assert not (tmp_path / "out.pt").exists()
    assert os.listdir(tmp_path) == []  # no temporary file left behind
    convert(os.path.join(LEGACY, "checkpoint.pt"), tmp_path / "out.pt", to="torch", approximate=True)
    state = torch.load(tmp_path / "out.pt", weights_only=True)["optimizer"]
    assert "correct_bias" not in state["param_groups"][0] and state["param_groups"][0]["decoupled_weight_decay"]


def test_legacy_adamw_resumes_in_an_optimizer_of_its_definition(tmp_path):
    """wse.optim.AdamW adds eps to sqrt(v) as transformers 4.46's AdamW did (and, without weight
    decay, computes the same update): the translated state continues the legacy run exactly."""
    golden = json.load(open(os.path.join(LEGACY, "continuation.json")))
    convert(os.path.join(LEGACY, "checkpoint.pt"), tmp_path / "out.pt", to="torch", optimizer_layout="transformers")
    payload = torch.load(tmp_path / "out.pt", weights_only=True)
    assert isinstance(payload["optimizer"]["state"][0]["step"], int)
    assert payload["optimizer"]["param_groups"][0]["correct_bias"] is True
    net, optimizer = resume(tmp_path / "out.pt",
                            lambda p: wse.optim.AdamW(p, lr=0.05, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.0))
    losses = train(net, optimizer, golden["more"], start=golden["steps"])
    assert losses == pytest.approx(golden["losses"][golden["steps"]:], rel=1e-6)
    for name, parameter in net.named_parameters():
        torch.testing.assert_close(parameter.detach(), torch.tensor(golden["parameters"][name]), atol=1e-6, rtol=1e-6)


def test_torch_adamw_state_written_in_the_legacy_layout_is_refused_unless_approximate(tmp_path):
    net = tiny_net()
    optimizer = torch.optim.AdamW(net.parameters(), lr=0.01)
    train(net, optimizer, 2)
    save_training_dict(tmp_path / "src.pt", net, optimizer, 2)
    with pytest.raises(CheckpointError, match="torch.optim's"):
        convert(tmp_path / "src.pt", tmp_path / "out.pt", to="torch", optimizer_layout="transformers")


# -- torch.optim round trips through other formats ---------------------------------------------

@pytest.mark.parametrize("make", [
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1, amsgrad=True),
    lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
    lambda p: torch.optim.Adafactor(p, lr=0.01),
    lambda p: torch.optim.NAdam(p, lr=0.01),
], ids=["sgd-nesterov", "adamw-amsgrad", "rmsprop", "adafactor", "nadam"])
@pytest.mark.parametrize("via", ["lightning", "accelerate"])
def test_torch_optimizers_continue_after_a_trip_through_another_format(tmp_path, make, via):
    net = tiny_net()
    optimizer = make(net.parameters())
    train(net, optimizer, 3)
    save_training_dict(tmp_path / "src.pt", net, optimizer, 3)
    expected = train(net, optimizer, 2, start=3)

    convert(tmp_path / "src.pt", tmp_path / "middle", to=via)
    convert(tmp_path / "middle", tmp_path / "back.pt", to="torch", prefix="")
    resumed_net, resumed = resume(tmp_path / "back.pt", make)
    assert torch.load(tmp_path / "back.pt", weights_only=True)["step"] == 3
    assert train(resumed_net, resumed, 2, start=3) == pytest.approx(expected, rel=1e-6)


def test_wse_optim_lion_state_passes_through_by_name(tmp_path):
    net = tiny_net()
    optimizer = wse.optim.Lion(net.parameters(), lr=1e-3, weight_decay=0.1)
    train(net, optimizer, 3)
    save_training_dict(tmp_path / "src.pt", net, optimizer, 3)
    expected = train(net, optimizer, 2, start=3)
    checkpoint = load(tmp_path / "src.pt")
    assert checkpoint.optimizers[0].algorithm == "Lion"
    save(checkpoint, tmp_path / "out.ckpt", "lightning", prefix="")
    payload = torch.load(tmp_path / "out.ckpt", weights_only=True)
    net2 = tiny_net(seed=3)
    net2.load_state_dict(payload["state_dict"])
    resumed = wse.optim.Lion(net2.parameters(), lr=1e-3, weight_decay=0.1)
    resumed.load_state_dict(payload["optimizer_states"][0])
    assert train(net2, resumed, 2, start=3) == pytest.approx(expected, rel=1e-6)


def test_an_optimizer_without_a_counterpart_is_an_error_unless_model_only(tmp_path):
    net = tiny_net()
    optimizer = torch.optim.LBFGS(net.parameters(), lr=0.1)
    x, y = batch(0)

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(net(x), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    save_training_dict(tmp_path / "src.pt", net, optimizer, 1)
    with pytest.raises(CheckpointError, match="cannot tell which optimizer.*model_only"):
        convert(tmp_path / "src.pt", tmp_path / "out.ckpt", to="lightning")
    assert not (tmp_path / "out.ckpt").exists()
    convert(tmp_path / "src.pt", tmp_path / "out.ckpt", to="lightning", model_only=True)
    assert torch.load(tmp_path / "out.ckpt", weights_only=True)["optimizer_states"] == []


# -- transformers' Adafactor ----------------------------------------------------------------------

def hf_adafactor(params):
    from transformers.optimization import Adafactor

    return Adafactor(params, lr=1e-2, scale_parameter=False, relative_step=False, warmup_init=False)


def test_transformers_adafactor_gets_torch_names_in_the_hub_and_its_own_back(tmp_path):
    net = tiny_net()
    optimizer = hf_adafactor(net.parameters())
    train(net, optimizer, 3)
    save_training_dict(tmp_path / "src.pt", net, optimizer, 3)
    expected = train(net, optimizer, 2, start=3)

    checkpoint = load(tmp_path / "src.pt")
    (opt,) = checkpoint.optimizers
    assert opt.algorithm == "Adafactor" and opt.conventions == {"definition": "transformers"}
    weight = opt.state["0.weight"]  # a 3x4 matrix: factored second moments, torch's names and shapes
    assert weight["row_var"].shape == (3, 1) and weight["col_var"].shape == (1, 4)
    assert opt.state["0.bias"]["variance"].shape == (3,)
    assert opt.param_groups[0]["beta2_decay"] == -0.8 and opt.param_groups[0]["d"] == 1.0

    with pytest.raises(CheckpointError, match="transformers'.*Adafactor"):
        save(checkpoint, tmp_path / "torch.pt", "torch")
    save(checkpoint, tmp_path / "hf.pt", "torch", optimizer_layout="transformers")
    net2, resumed = resume(tmp_path / "hf.pt", hf_adafactor)
    assert train(net2, resumed, 2, start=3) == pytest.approx(expected, rel=1e-6)


def test_groups_that_agree_are_merged_into_one_in_model_order(tmp_path):
    """Trainer-style groups (matrices, then vectors) with equal hyperparameters become the one
    group of ``optimizer(model.parameters())``, renumbered in the model's order."""
    net = tiny_net()
    matrices = [p for p in net.parameters() if p.dim() == 2]
    vectors = [p for p in net.parameters() if p.dim() == 1]
    optimizer = torch.optim.AdamW([{"params": matrices}, {"params": vectors}], lr=0.01, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    train(net, optimizer, 3)
    for _ in range(3):
        scheduler.step()
    torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "step": 3}, tmp_path / "src.pt")
    expected = train(net, optimizer, 2, start=3)

    convert(tmp_path / "src.pt", tmp_path / "one.pt", to="torch")
    payload = torch.load(tmp_path / "one.pt", weights_only=True)
    assert [len(group["params"]) for group in payload["optimizer"]["param_groups"]] == [4]
    assert len(payload["scheduler"]["base_lrs"]) == 1 and len(payload["scheduler"]["lr_lambdas"]) == 1
    resumed_net, resumed = resume(tmp_path / "one.pt", lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.0))
    assert train(resumed_net, resumed, 2, start=3) == pytest.approx(expected, rel=1e-6)

    convert(tmp_path / "src.pt", tmp_path / "kept.pt", to="torch", param_groups="keep")
    kept = torch.load(tmp_path / "kept.pt", weights_only=True)["optimizer"]["param_groups"]
    assert [len(group["params"]) for group in kept] == [2, 2]
