"""The ``cerebras`` format: .mdl files as cerebras-pytorch 2.10 writes them, and training resumed across.

The fixtures in ``fixtures/cerebras/`` were written by the real ``cstorch.save`` of
cerebras-pytorch 2.10.0 (run on the CPU through the project's reference tool, h5py 3.13,
hdf5plugin 5.1). ``adamw.mdl``, ``adam.mdl`` and ``sgd.mdl`` hold the state of ``Net`` below
after N = 5 steps on ``batch(0..4)``, trained with the real cerebras-pytorch optimizers and
schedulers (``torch.manual_seed(0)`` before building ``Net``; mean squared error):

* ``adamw.mdl``: ``AdamW`` with two groups (the two Linear weights with weight_decay 0.01,
  the rest with 0.0), lr 0.05, betas (0.9, 0.99), and ``LinearLR(initial_learning_rate=0.05,
  end_learning_rate=0.01, total_iters=20)``; saved as ``{"model", "optimizer",
  "lr_scheduler", "global_step"}``.
* ``adam.mdl``: ``Adam(lr=0.03, weight_decay=0.02)``, no scheduler.
* ``sgd.mdl``: ``SGD(lr=0.1, momentum=0.9, nesterov=True)`` with ``CosineDecayLR(0.1 -> 0.01,
  12 iters)`` and ``LinearWD(0.0 -> 0.001, 12 iters)``, in the Model Zoo 2.x layout
  (``model.``-prefixed names, a ``schedulers`` list, ``__metadata__``).

The same run was then continued for K = 4 steps on ``batch(5..8)`` with cerebras-pytorch;
``golden.json`` holds those losses, the parameters after N + K steps, and the first N losses.
``mixed.mdl`` is ``cstorch.save`` of a tree with every leaf kind (bfloat16, bool, int64 0-d,
empty, float16, float64 tensors, a tensor saved twice, None, str, float, bool, tuple, set,
int-keyed and empty containers, and a ``global_step`` that cstorch stores as a link).
``state_dict.mdl`` is ``cstorch.save(model.state_dict())`` of an embedding whose weight is tied
to a bias-free output layer (``torch.manual_seed(0)``): cstorch writes the tied weight twice.
``extra.mdl`` (described at its test) has a numpy array and a dill-pickled object beside the model.
``full.mdl`` holds cerebras-pytorch's ``DeferredFullTensor`` leaves (tensors of one value, as its
lazy initialisation makes them: zeros float32, 1.5 bfloat16, ones float16) beside an ordinary one.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

import wse.optim as W
from wse import checkpoint as C
from wse.checkpoint import _h5
from wse.checkpoint.hub import CheckpointError, LazyStateDict, OptimizerState

h5py = pytest.importorskip("h5py")
pytest.importorskip("hdf5plugin")

FIXTURES = Path(__file__).parent / "fixtures" / "cerebras"
GOLDEN = json.loads((FIXTURES / "golden.json").read_text())
N, K = GOLDEN["N"], GOLDEN["K"]


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 8)
        self.norm = torch.nn.LayerNorm(8)
        self.fc2 = torch.nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(torch.tanh(self.norm(self.fc1(x))))


def batch(k: int):
    i = torch.arange(24, dtype=torch.float32).reshape(6, 4)
    x = torch.sin(0.37 * i + 0.5 * k)
    y = torch.stack([torch.cos(0.21 * i.sum(1) + k), torch.sin(0.13 * i.sum(1) - k)], 1)
    return x, y


def loss_of(model, k: int):
    x, y = batch(k)
    return torch.nn.functional.mse_loss(model(x), y)


def optimizer_and_schedulers(kind: str, model: Net):
    """The wse.optim counterparts of the fixture's cerebras-pytorch optimizer and schedulers."""
    if kind == "adamw":
        decay = [model.fc1.weight, model.fc2.weight]
        rest = [model.fc1.bias, model.norm.weight, model.norm.bias, model.fc2.bias]
        opt = W.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                      lr=0.05, betas=(0.9, 0.99))
        return opt, [W.lr_scheduler.LinearLR(opt, initial_learning_rate=0.05, end_learning_rate=0.01, total_iters=20)]
    if kind == "adam":
        return W.Adam(model.parameters(), lr=0.03, weight_decay=0.02), []
    opt = W.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    return opt, [W.lr_scheduler.CosineDecayLR(opt, initial_learning_rate=0.1, end_learning_rate=0.01, total_iters=12),
                 W.weight_decay_scheduler.LinearWD(opt, initial_val=0.0, end_val=0.001, total_iters=12)]


def positional(opt_state: OptimizerState, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The hub's named state numbered by ``optimizer``'s own parameter order (torch's layout)."""
    name_of = {id(p): name for name, p in model.named_parameters()}
    order = [name_of[id(p)] for group in optimizer.param_groups for p in group["params"]]
    assert sorted(order) == sorted(opt_state.param_names)
    position = {name: index for index, name in enumerate(order)}
    groups = [dict(group, params=[position[name] for name in group["params"]]) for group in opt_state.param_groups]
    return {"state": {position[name]: dict(entry) for name, entry in opt_state.state.items()}, "param_groups": groups}


def continue_training(model, optimizer, schedulers, start: int = N, steps: int = K):
    losses = []
    for k in range(start, start + steps):
        optimizer.zero_grad()
        loss = loss_of(model, k)
        loss.backward()
        optimizer.step()
        for scheduler in schedulers:
            scheduler.step()
        losses.append(loss.item())
    return losses


def resume_from_hub(kind: str, checkpoint) -> list:
    model = Net()
    model.load_state_dict(dict(checkpoint.model))
    optimizer, schedulers = optimizer_and_schedulers(kind, model)
    optimizer.load_state_dict(positional(checkpoint.optimizers[0], model, optimizer))
    for scheduler, state in zip(schedulers, checkpoint.schedulers):
        scheduler.load_state_dict(state)
    return model, continue_training(model, optimizer, schedulers)


def assert_matches_source(kind: str, model, losses, atol: float = 2e-6):
    golden = GOLDEN[kind]
    assert losses == pytest.approx(golden["losses_next_K"], abs=atol)
    for name, p in model.named_parameters():
        expected = torch.tensor(golden["params_after_N_plus_K"][name])
        torch.testing.assert_close(p.detach(), expected, atol=atol, rtol=0)


# -- reading what cstorch.save wrote ---------------------------------------------------------


def test_detects_and_reads_the_cstorch_training_state():
    path = FIXTURES / "adamw.mdl"
    assert C.detect(path) == "cerebras"
    checkpoint = C.load(path)
    assert isinstance(checkpoint.model, LazyStateDict)  # tensors stream, read when used
    assert list(checkpoint.model) == ["fc1.weight", "fc1.bias", "norm.weight", "norm.bias", "fc2.weight", "fc2.bias"]
    assert checkpoint.model.info("fc1.weight") == (torch.float32, (8, 4))
    # cstorch stored global_step as a link to the int 5 of an unrelated leaf
    assert checkpoint.step == N
    assert checkpoint.metadata["versions"]["cerebras-pytorch"] == "2.10.0"
    (opt,) = checkpoint.optimizers
    assert opt.algorithm == "AdamW"
    assert opt.conventions == {"eps": "sqrt_v"}
    assert [group["params"] for group in opt.param_groups] == [
        ["fc1.weight", "fc2.weight"], ["fc1.bias", "norm.weight", "norm.bias", "fc2.bias"]]
    assert [group["weight_decay"] for group in opt.param_groups] == [0.01, 0.0]
    assert opt.param_groups[0]["l2_regularization_rate"] == 0.0 and opt.param_groups[0]["correct_bias"] is True
    # the scheduled lr was a 0-d tensor (float32): it is the number it holds
    assert isinstance(opt.param_groups[0]["lr"], float)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05 - (0.05 - 0.01) * N / 20, rel=1e-6)
    for entry in opt.state.values():
        assert set(entry) == {"step", "exp_avg", "exp_avg_sq"}
        assert entry["step"].dtype == torch.float32 and entry["step"].dim() == 0 and float(entry["step"]) == N
    (scheduler,) = checkpoint.schedulers
    assert scheduler["last_epoch"] == N and isinstance(scheduler["last_epoch"], int)
    assert scheduler["_step_count"] == N + 1
    assert scheduler["_last_lr"] == [opt.param_groups[0]["lr"]] * 2


def test_adam_weight_decay_is_torch_adams_l2():
    (opt,) = C.load(FIXTURES / "adam.mdl").optimizers
    assert opt.algorithm == "Adam"
    assert opt.param_groups[0]["weight_decay"] == 0.02
    assert "l2_regularization_rate" not in opt.param_groups[0]


def test_model_zoo_layout_prefix_schedulers_and_sgd_momentum():
    checkpoint = C.load(FIXTURES / "sgd.mdl")
    assert list(checkpoint.model)[0] == "fc1.weight"  # the Trainer's "model." prefix is stripped
    assert checkpoint.metadata["cerebras_model_prefix"] == "model."
    assert checkpoint.metadata["cerebras_extra"] == {"__metadata__": [{"version": "2.10.0", "model_name": "tiny"}]}
    (opt,) = checkpoint.optimizers
    assert opt.algorithm == "SGD" and opt.param_groups[0]["nesterov"] is True
    assert set(opt.state["fc1.weight"]) == {"momentum_buffer"}
    lr, wd = checkpoint.schedulers
    assert lr["last_epoch"] == wd["last_epoch"] == N
    assert "_last_lr" in lr and "_last_lr" not in wd  # a weight-decay scheduler has no LR
    assert opt.param_groups[0]["weight_decay"] == pytest.approx(wd["_last_value"][0])


def test_every_leaf_kind_and_links():
    with _h5.MdlReader(str(FIXTURES / "mixed.mdl")) as reader:
        tree = reader.tree()
    model = tree["model"]
    assert isinstance(model, OrderedDict)
    assert model["emb.weight"].dtype == torch.bfloat16
    assert model["emb.weight"].tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert model["mask"].tolist() == [True, False, True]
    assert model["count"].dtype == torch.int64 and model["count"].dim() == 0 and int(model["count"]) == 3
    assert model["empty"].shape == (0, 2)
    assert model["half"].dtype == torch.float16 and model["half"].tolist() == [1.5, -2.0]
    assert model["double"].dtype == torch.float64 and model["double"].item() == 1.0 / 3.0
    assert tree["tied"][0] is tree["tied"][1]  # a link gives back the same object, as cstorch.load does
    assert tree["none"] is None and tree["name"] == "tiny" and tree["ratio"] == 0.25 and tree["flag"] is True
    assert tree["pair"] == (3, 2.5) and tree["tags"] == {"decay", "embed"}
    assert tree["nested"] == {7: {"a": 3}, "e": {}, "el": []}
    assert tree["global_step"] == 3


def test_bare_state_dict_with_a_tied_weight_reads_and_writes_back(tmp_path):
    checkpoint = C.load(FIXTURES / "state_dict.mdl")
    assert checkpoint.metadata["cerebras_layout"] == "state_dict"
    assert list(checkpoint.model) == ["emb.weight", "head.weight"]
    assert checkpoint.step is None and checkpoint.optimizers == []
    assert torch.equal(checkpoint.model["emb.weight"], checkpoint.model["head.weight"])  # stored twice
    C.save(checkpoint, tmp_path / "again.mdl", "cerebras")
    with h5py.File(FIXTURES / "state_dict.mdl", "r") as real, h5py.File(tmp_path / "again.mdl", "r") as ours:
        assert set(ours) == set(real) == {"emb.weight", "head.weight"}
        assert set(ours.attrs) == set(real.attrs)
        assert _leaf_documents(ours) == _leaf_documents(real)
        assert json.loads(ours.attrs["__spec__"]) == json.loads(real.attrs["__spec__"])
        for name in real:
            assert (ours[name][()] == real[name][()]).all()


def test_entries_beside_the_training_state_are_kept_for_writing_back():
    checkpoint = C.load(FIXTURES / "mixed.mdl")
    assert checkpoint.step == 3
    extra = checkpoint.metadata["cerebras_extra"]
    assert extra["name"] == "tiny" and extra["tags"] == {"decay", "embed"} and extra["pair"] == (3, 2.5)
    assert checkpoint.model.info("emb.weight") == (torch.bfloat16, (2, 3))


# -- the acid test: continue where the cerebras-pytorch run stopped ---------------------------


@pytest.mark.parametrize("kind", ["adamw", "adam", "sgd"])
def test_resumed_run_continues_as_cerebras_pytorch_did(kind):
    model, losses = resume_from_hub(kind, C.load(FIXTURES / f"{kind}.mdl"))
    assert_matches_source(kind, model, losses)


def test_cerebras_to_torch_file_and_back(tmp_path):
    """cerebras -> torch.save file -> cerebras: the second .mdl holds the real file's numbers, bit for bit."""
    torch_file = tmp_path / "state.pt"
    C.convert(FIXTURES / "adamw.mdl", torch_file, to="torch", approximate=True)
    # a torch.save file numbers the parameters: name them as the optimizer grouped them
    groups = [["fc1.weight", "fc2.weight"], ["fc1.bias", "norm.weight", "norm.bias", "fc2.bias"]]
    via_torch = C.load(torch_file, param_names=groups)
    assert via_torch.step == N
    (opt,) = via_torch.optimizers
    assert float(opt.state["fc1.weight"]["step"]) == N
    back = tmp_path / "back.mdl"
    # the torch file forgot that the state came from Cerebras' AdamW: say so to write it back exactly
    for o in via_torch.optimizers:
        o.conventions.update(eps="sqrt_v")
    C.save(via_torch, back, "cerebras")
    with h5py.File(FIXTURES / "adamw.mdl", "r") as real, h5py.File(back, "r") as ours:
        for name in real:
            if name.startswith(("model.", "optimizer.state.")):
                assert ours[name].dtype == real[name].dtype, name
                assert (ours[name][()] == real[name][()]).all(), name  # beta powers included
    model, losses = resume_from_hub("adamw", C.load(back))
    assert_matches_source("adamw", model, losses)


# -- writing what cstorch.load reads ----------------------------------------------------------


def _leaf_documents(handle):
    return {name[: -len(".__metadata__")]: json.loads(handle.attrs[name]) for name in handle.attrs
            if name.endswith(".__metadata__")}


def _spec_shape(spec):
    """A treespec with dict keys in a canonical order (cstorch keeps insertion order, which may differ)."""
    _, node = spec if isinstance(spec, list) else (None, spec)

    def walk(node):
        if node["type"] is None:
            return None
        children = [walk(child) for child in node["children_spec"]]
        if node["type"] in ("builtins.dict", "collections.OrderedDict"):
            return ("dict", sorted(zip(map(str, json.loads(node["context"])), map(repr, children))))
        return (node["type"], children)

    return walk(node)


def _resolved_type(documents, key):
    meta = documents[key][f"{key}.__metadata__"]
    while meta["__TYPE__"] == "LinkedObject":
        meta = documents[meta["key"]][f"{meta['key']}.__metadata__"]
    return meta["__TYPE__"]


@pytest.mark.parametrize("kind", ["adamw", "sgd"])
def test_written_file_has_the_structure_cstorch_writes(tmp_path, kind):
    """Our file against cstorch.save's: root attributes, leaf metadata, datasets, filters, dtypes."""
    ours_path = tmp_path / "ours.mdl"
    C.save(C.load(FIXTURES / f"{kind}.mdl"), ours_path, "cerebras")
    with h5py.File(FIXTURES / f"{kind}.mdl", "r") as real, h5py.File(ours_path, "r") as ours:
        assert set(ours.attrs) == set(real.attrs)
        for name in ("__version__", "__cstorch_version__", "__SUCCESS__"):
            assert ours.attrs[name] == real.attrs[name]
            assert type(ours.attrs[name]) is type(real.attrs[name])
        real_readable, real_spec = json.loads(real.attrs["__spec__"])
        ours_readable, ours_spec = json.loads(ours.attrs["__spec__"])
        assert _spec_shape(json.loads(ours_spec)) == _spec_shape(json.loads(real_spec))
        assert (ours_readable is None) == (real_readable is None)
        real_docs, our_docs = _leaf_documents(real), _leaf_documents(ours)
        assert set(our_docs) == set(real_docs)
        for key, document in our_docs.items():
            assert set(document) == set(real_docs[key])
            assert document["__spec__"] == real_docs[key]["__spec__"] and document["__objects__"] == [key]
            assert _resolved_type(our_docs, key) == _resolved_type(real_docs, key), key
        # every dataset cstorch wrote is there, alike; ours may hold a tensor cstorch linked
        assert set(real) <= set(ours)
        for name in ours:
            dataset = ours[name]
            if name not in real:
                assert real_docs[name][f"{name}.__metadata__"]["__TYPE__"] == "LinkedObject"
                continue
            expected = real[name]
            assert (dataset.dtype, dataset.shape, dataset.chunks) == (expected.dtype, expected.shape, expected.chunks)
            assert dataset._filters == expected._filters  # LZ4 (32004) unless 0-d
            layout = dataset.id.get_create_plist().get_layout()
            assert layout == expected.id.get_create_plist().get_layout()
            assert set(dataset.attrs) == set(expected.attrs)
            for attr in dataset.attrs:
                assert str(dataset.attrs[attr]) == str(expected.attrs[attr]), (name, attr)
                assert getattr(dataset.attrs[attr], "dtype", None) == getattr(expected.attrs[attr], "dtype", None)


def test_every_dtype_cstorch_keeps_round_trips(tmp_path):
    with _h5.MdlReader(str(FIXTURES / "mixed.mdl")) as reader:
        model = dict(reader.tree()["model"])
    checkpoint = C.Checkpoint(model=model, metadata={"format": "cerebras", "cerebras_layout": "state_dict"})
    C.save(checkpoint, tmp_path / "mixed.mdl", "cerebras")
    with h5py.File(FIXTURES / "mixed.mdl", "r") as real, h5py.File(tmp_path / "mixed.mdl", "r") as ours:
        for name, tensor in model.items():
            assert ours[name].dtype == real[f"model.{name}"].dtype  # bfloat16 as int16, bool as HDF5 bool
            assert ours[name]._filters == real[f"model.{name}"]._filters
    again = C.load(tmp_path / "mixed.mdl")
    for name, tensor in model.items():
        assert again.model[name].dtype == tensor.dtype and torch.equal(again.model[name], tensor)


def test_torch_adamw_state_becomes_the_powers_of_the_coming_step(tmp_path):
    """A torch AdamW after N steps: Cerebras holds beta**(N+1), not beta**N as cstorch's own load sets."""
    model = Net()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, betas=(0.8, 0.95), eps=1e-8)
    continue_training(model, optimizer, [], start=0, steps=3)
    checkpoint = C.Checkpoint(model=model.state_dict(), step=3)
    checkpoint.optimizers.append(OptimizerState("AdamW", [
        dict({k: v for k, v in optimizer.param_groups[0].items() if k != "params"},
             params=[name for name, _ in model.named_parameters()])],
        {name: optimizer.state[p] for name, p in model.named_parameters()}))
    with pytest.raises(CheckpointError, match="approximate=True"):
        C.save(checkpoint, tmp_path / "a.mdl", "cerebras")  # torch adds eps to sqrt(v_hat)
    assert not os.listdir(tmp_path)
    C.save(checkpoint, tmp_path / "a.mdl", "cerebras", approximate=True)
    with h5py.File(tmp_path / "a.mdl", "r") as handle:
        assert handle["optimizer.state.0.beta1_power"][()] == pytest.approx(0.8 ** 4, rel=1e-6)
        assert handle["optimizer.state.0.beta2_power"][()] == pytest.approx(0.95 ** 4, rel=1e-6)
        assert handle["optimizer.state.0.beta1_power"].dtype == "float32"
        correct_bias = json.loads(handle.attrs["optimizer.param_groups.0.correct_bias.__metadata__"])
        assert correct_bias["optimizer.param_groups.0.correct_bias.__metadata__"]["scalar_value"] is True
        step_doc = json.loads(handle.attrs["global_step.__metadata__"])
        assert step_doc["global_step.__metadata__"]["scalar_value"] == 3
    (opt,) = C.load(tmp_path / "a.mdl").optimizers
    assert float(opt.state["fc1.weight"]["step"]) == 3


# -- bad input, missing extra ------------------------------------------------------------------


def test_missing_h5py_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now raises ImportError
    with pytest.raises(CheckpointError, match=r'pip install "wse\[cerebras\]"'):
        C.load(FIXTURES / "adamw.mdl", format="cerebras")
    assert C.detect(FIXTURES / "adamw.mdl") == "cerebras"  # still recognised, so the error can say so
    with pytest.raises(CheckpointError, match=r'pip install "wse\[cerebras\]"'):
        C.save(C.Checkpoint(model={"w": torch.zeros(2)}), tmp_path / "x.mdl", "cerebras")
    assert not os.listdir(tmp_path)


def test_truncated_file_is_a_clear_error(tmp_path):
    data = (FIXTURES / "adamw.mdl").read_bytes()
    broken = tmp_path / "broken.mdl"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="broken.mdl"):
        checkpoint = C.load(broken, format="cerebras")
        for name in checkpoint.model:
            checkpoint.model[name]


def test_partially_written_file_is_refused(tmp_path):
    partial = tmp_path / "partial.mdl"
    shutil.copyfile(FIXTURES / "adamw.mdl", partial)
    with h5py.File(partial, "a") as handle:
        del handle.attrs["__SUCCESS__"]
    with pytest.raises(CheckpointError, match="partially written"):
        C.load(partial)


def test_pickled_leaf_is_not_unpickled(tmp_path):
    """An ObjectSerializer leaf is dill bytes; loading would run code, so it is refused unread."""
    evil = tmp_path / "evil.mdl"
    shutil.copyfile(FIXTURES / "mixed.mdl", evil)
    with h5py.File(evil, "a") as handle:
        document = json.loads(handle.attrs["name.__metadata__"])
        document["name.__metadata__"] = {"__TYPE__": "ObjectSerializer", "__BYTES__": True}
        handle.attrs["name.__metadata__"] = json.dumps(document, indent=4)
        handle.create_dataset("name", data=h5py.Empty("f"))
        handle["name"].attrs["__BYTES__"] = b"\x80\x04cos\nsystem\n(S'touch pwned'\ntR."
    with _h5.MdlReader(str(evil)) as reader, pytest.raises(CheckpointError, match="pickled Python object"):
        reader.tree()
    assert not os.path.exists("pwned")


def test_existing_destination_and_unwritable_dtype_leave_nothing(tmp_path):
    target = tmp_path / "out.mdl"
    target.write_bytes(b"keep me")
    with pytest.raises(CheckpointError, match="already exists"):
        C.save(C.Checkpoint(model={"w": torch.zeros(2)}), target, "cerebras")
    assert target.read_bytes() == b"keep me"
    model = OrderedDict(a=torch.zeros(3), b=torch.zeros(2, dtype=torch.int8), c=torch.ones(1))
    with pytest.raises(CheckpointError, match=r"new.mdl: tensor 'model.b' is torch.int8"):
        C.save(C.Checkpoint(model=model), tmp_path / "new.mdl", "cerebras")
    assert sorted(os.listdir(tmp_path)) == ["out.mdl"]  # no temporary file, no half-written checkpoint


def test_untranslatable_optimizer_needs_model_only(tmp_path):
    checkpoint = C.load(FIXTURES / "adamw.mdl")
    checkpoint.optimizers[0].algorithm = "SparseAdam"
    with pytest.raises(CheckpointError, match="model_only"):
        C.save(checkpoint, tmp_path / "x.mdl", "cerebras")
    C.save(checkpoint, tmp_path / "x.mdl", "cerebras", model_only=True)
    written = C.load(tmp_path / "x.mdl")
    assert written.optimizers == [] and written.step is None
    assert torch.equal(written.model["fc2.bias"], checkpoint.model["fc2.bias"])


def test_param_names_name_the_positions(tmp_path):
    names = [["fc2.weight", "fc1.weight"], ["fc1.bias", "norm.weight", "norm.bias", "fc2.bias"]]
    with pytest.raises(CheckpointError, match="shape"):
        C.load(FIXTURES / "adamw.mdl", param_names=names)  # fc2.weight is (2, 8), position 0 is (8, 4)
    with pytest.raises(CheckpointError, match="6 parameters"):
        C.load(FIXTURES / "adamw.mdl", param_names=["fc1.weight"])
    right = [["fc1.weight", "fc2.weight"], names[1]]
    checkpoint = C.load(FIXTURES / "adamw.mdl", param_names=right)
    assert "notes" not in checkpoint.metadata
    assert checkpoint.optimizers[0].param_names == right[0] + right[1]


# -- Lightning: resume a cerebras-pytorch run with Trainer.fit(ckpt_path=...), and back --------


class _Batches(torch.utils.data.Dataset):
    def __init__(self, first: int, count: int):
        self.steps = list(range(first, first + count))

    def __len__(self):
        return len(self.steps)

    def __getitem__(self, index):
        return batch(self.steps[index])


def _lightning_module(kind: str):
    import lightning as L

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = Net()
            self.losses = []

        def training_step(self, pair, _):
            x, y = (t.squeeze(0) for t in pair)
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.losses.append(loss.item())
            return loss

        def configure_optimizers(self):
            optimizer, schedulers = optimizer_and_schedulers(kind, self.net)
            return {"optimizer": optimizer,
                    "lr_scheduler": {"scheduler": schedulers[0], "interval": "step"}}

    return Module()


@pytest.mark.slow
def test_lightning_resumes_the_cerebras_run_and_its_checkpoint_goes_back(tmp_path):
    import lightning as L

    ckpt = tmp_path / "resume.ckpt"
    # the target optimizer is wse.optim's AdamW: its state is the Cerebras layout, so nothing is approximated
    C.convert(FIXTURES / "adamw.mdl", ckpt, to="lightning", optimizer_layout="cerebras", prefix="net.")
    module = _lightning_module("adamw")
    data = torch.utils.data.DataLoader(_Batches(N, K), batch_size=1)
    trainer = L.Trainer(max_steps=N + K, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(module, data, ckpt_path=ckpt)
    assert trainer.global_step == N + K
    assert_matches_source("adamw", module.net, module.losses)

    # back: Lightning's own checkpoint of the continued run, as a Cerebras .mdl
    done = tmp_path / "done.ckpt"
    trainer.save_checkpoint(done)
    mdl = tmp_path / "done.mdl"
    groups = [["fc1.weight", "fc2.weight"], ["fc1.bias", "norm.weight", "norm.bias", "fc2.bias"]]
    C.convert(done, mdl, to="cerebras", param_names=groups, strip_prefix="net.")
    back = C.load(mdl)
    assert back.step == N + K and back.schedulers[0]["last_epoch"] == N + K
    with h5py.File(mdl, "r") as handle:
        assert set(handle.attrs) >= {"__spec__", "__version__", "__cstorch_version__", "__SUCCESS__"}
        for name, p in module.net.named_parameters():
            assert torch.equal(torch.from_numpy(handle[f"model.{name}"][()]), p.detach())
        # the powers of step N+K+1, rounded as Cerebras' float32 product reaches them
        power = torch.tensor(0.9, dtype=torch.float32)
        for _ in range(N + K):
            power = power * 0.9
        assert handle["optimizer.state.0.beta1_power"][()] == power.item()


# -- every wse.optim algorithm: its Cerebras-layout state through the hub and back --------------

ALGORITHMS = {
    "Adam": dict(lr=0.01, weight_decay=0.01),
    "AdamW": dict(lr=0.01, weight_decay=0.01, amsgrad=True),
    "SGD": dict(lr=0.05, momentum=0.9, dampening=0.1),
    "Adafactor": dict(lr=0.01, beta1=0.9),
    "Adadelta": dict(lr=1.0),
    "Adagrad": dict(lr=0.05, lr_decay=0.01),
    "Adamax": dict(lr=0.01),
    "ASGD": dict(lr=0.01, t0=2),
    "NAdam": dict(lr=0.01),
    "RAdam": dict(lr=0.01),
    "RMSprop": dict(lr=0.01, momentum=0.5, centered=True),
    "Rprop": dict(lr=0.01),
    "Lamb": dict(lr=0.01, weight_decay=0.01),
    "Lion": dict(lr=0.001, weight_decay=0.1),
}


@pytest.mark.parametrize("layout", ["torch", "cerebras"])
@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_each_algorithm_resumes_from_the_translated_state(algorithm, layout):
    """A wse.optim run's state (the Cerebras layout) read into the hub, written in torch's layout (which
    wse.optim loads as torch.optim's) or back in the Cerebras one, resumes as the run continues."""
    from wse.checkpoint.formats import cerebras as cerebras_format
    from wse.checkpoint.optim_state import from_hub

    cls = getattr(W, algorithm)
    torch.manual_seed(0)
    source = Net()
    optimizer = cls(source.parameters(), **ALGORITHMS[algorithm])
    continue_training(source, optimizer, [], start=0, steps=3)
    saved = optimizer.state_dict()
    resumed = Net()
    resumed.load_state_dict(source.state_dict())
    names = [name for name, _ in source.named_parameters()]

    hub = cerebras_format.optimizer_to_hub(saved, names, where="test", global_step=3)
    assert hub.algorithm == algorithm
    if layout == "torch" and algorithm not in ("Lamb", "Lion"):
        if hasattr(torch.optim, algorithm):
            assert "beta1_power" not in hub.state[names[0]]
            if algorithm not in ("SGD", "Lamb", "Lion"):
                assert float(hub.state[names[0]]["step"]) == 3
        written = from_hub(hub, where="test", layout="torch", approximate=True)
        if algorithm == "Adafactor":
            pytest.skip("torch's Adafactor layout has no first moment; see the cerebras layout case")
    else:
        written = from_hub(hub, where="test", layout="cerebras")
    target = cls(resumed.parameters(), **ALGORITHMS[algorithm])
    target.load_state_dict(written)
    expected = continue_training(source, optimizer, [], start=3, steps=3)
    got = continue_training(resumed, target, [], start=3, steps=3)
    assert got == pytest.approx(expected, abs=1e-6)
    for (name, p), q in zip(source.named_parameters(), resumed.parameters()):
        torch.testing.assert_close(q, p, atol=1e-6, rtol=0, msg=name)


def test_model_zoo_prefix_goes_back_unless_another_is_asked(tmp_path):
    checkpoint = C.load(FIXTURES / "sgd.mdl")
    C.save(checkpoint, tmp_path / "zoo.mdl", "cerebras")
    C.save(checkpoint, tmp_path / "plain.mdl", "cerebras", prefix="")
    with h5py.File(tmp_path / "zoo.mdl", "r") as zoo, h5py.File(tmp_path / "plain.mdl", "r") as plain:
        assert "model.model.fc1.weight" in zoo and "schedulers.1.last_epoch" in zoo
        assert "model.fc1.weight" in plain and "model.model.fc1.weight" not in plain


def test_an_optimizer_without_counterpart_is_an_error_that_names_model_only():
    from wse.checkpoint.formats import cerebras as cerebras_format

    state = {"state": {0: {"z": torch.zeros(2)}}, "param_groups": [{"lr": 0.1, "zeta": 3, "params": [0]}]}
    with pytest.raises(CheckpointError, match=r"model_only=True \(--model-only\)"):
        cerebras_format.optimizer_to_hub(state, ["w"], where="x.mdl")


@pytest.mark.slow
def test_state_dict_translation_callback_starts_from_a_mdl_and_exports_one(tmp_path):
    import lightning as L

    from wse.callbacks import StateDictTranslation

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = Net()
            self.losses = []

        def training_step(self, pair, _):
            x, y = (t.squeeze(0) for t in pair)
            loss = torch.nn.functional.mse_loss(self.model(x), y)
            self.losses.append(loss.item())
            return loss

        def configure_optimizers(self):
            optimizer, schedulers = optimizer_and_schedulers("adamw", self.model)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedulers[0], "interval": "step"}}

    module = Module()
    callback = StateDictTranslation(load_from=str(FIXTURES / "adamw.mdl"), export_to=str(tmp_path / "step{step}.mdl"),
                                    export_format="cerebras", export_on="end")
    trainer = L.Trainer(max_steps=N + K, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, callbacks=[callback])
    trainer.fit(module, torch.utils.data.DataLoader(_Batches(N, K), batch_size=1))
    assert_matches_source("adamw", module.model, module.losses)
    exported = C.load(tmp_path / f"step{N + K}.mdl")
    assert exported.step == N + K and exported.schedulers[0]["last_epoch"] == N + K
    assert float(exported.optimizers[0].state["fc1.weight"]["step"]) == N + K
    for name, p in module.model.named_parameters():
        assert torch.equal(exported.model[name], p.detach())


def test_model_tensors_are_read_only_when_used(monkeypatch):
    reads = []
    original = _h5.MdlReader.tensor
    monkeypatch.setattr(_h5.MdlReader, "tensor", lambda self, key: reads.append(key) or original(self, key))
    checkpoint = C.load(FIXTURES / "adamw.mdl")
    assert not [key for key in reads if key.startswith("model.")]  # the optimizer state is read, the model not yet
    checkpoint.model["fc2.bias"]
    assert [key for key in reads if key.startswith("model.")] == ["model.fc2.bias"]


def test_a_parameter_without_torch_state_gets_the_state_cerebras_allocates(tmp_path):
    model = Net()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    model.fc2.bias.requires_grad_(False)  # never gets a gradient: torch keeps no state for it
    continue_training(model, optimizer, [], start=0, steps=2)
    names = [name for name, _ in model.named_parameters()]
    hub = OptimizerState("AdamW", [dict({k: v for k, v in optimizer.param_groups[0].items() if k != "params"},
                                        params=names)],
                         {name: optimizer.state[p] for name, p in model.named_parameters() if p in optimizer.state})
    assert "fc2.bias" not in hub.state
    C.save(C.Checkpoint(model=model.state_dict(), optimizers=[hub], step=2), tmp_path / "a.mdl", "cerebras",
           approximate=True)
    with h5py.File(tmp_path / "a.mdl", "r") as handle:
        last = names.index("fc2.bias")
        assert (handle[f"optimizer.state.{last}.exp_avg"][()] == 0).all()
        assert handle[f"optimizer.state.{last}.beta1_power"][()] == pytest.approx(0.9)  # step 1 still to come
        assert handle["optimizer.state.0.beta1_power"][()] == pytest.approx(0.9 ** 3)


def test_step_from_beta2_power_or_the_global_step_once_beta1s_has_underflowed():
    from wse.checkpoint.formats import cerebras as cerebras_format

    def state(beta1_power, beta2_power):
        return {"state": {0: {"exp_avg": torch.zeros(2), "exp_avg_sq": torch.zeros(2),
                              "beta1_power": torch.tensor(beta1_power), "beta2_power": torch.tensor(beta2_power)}},
                "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-6, "weight_decay": 0.0,
                                  "l2_regularization_rate": 0.0, "correct_bias": True, "amsgrad": False,
                                  "params": [0]}]}

    def steps(saved, global_step):
        hub = cerebras_format.optimizer_to_hub(saved, ["w"], where="x", global_step=global_step)
        return float(hub.state["w"]["step"])

    assert steps(state(0.9 ** 11, 0.999 ** 11), global_step=None) == 10
    # after ~980 steps 0.9**(N+1) is 0 in float32: the beta2 power still tells N
    assert steps(state(0.0, 0.999 ** 1201), global_step=None) == 1200
    assert steps(state(0.0, 0.0), global_step=123456) == 123456
    with pytest.raises(CheckpointError, match="global_step"):
        steps(state(0.0, 0.0), global_step=None)


def test_every_container_kind_is_written_with_cstorchs_spec(tmp_path):
    """dict, OrderedDict, list, tuple, set, int keys and empty containers: the same __spec__, byte for byte."""
    with _h5.MdlReader(str(FIXTURES / "mixed.mdl")) as reader:
        tree = reader.tree()
    _h5.write_tree(tree, str(tmp_path / "mixed.mdl"))
    with h5py.File(FIXTURES / "mixed.mdl", "r") as real, h5py.File(tmp_path / "mixed.mdl", "r") as ours:
        assert ours.attrs["__spec__"] == real.attrs["__spec__"]
        real_docs, our_docs = _leaf_documents(real), _leaf_documents(ours)
        for key, document in real_docs.items():
            # cstorch links equal small ints too; a set's order is the process's string hashing
            if document[f"{key}.__metadata__"]["__TYPE__"] != "LinkedObject" and not key.startswith("tags."):
                assert our_docs[key] == document, key
        assert {our_docs[f"tags.{i}"][f"tags.{i}.__metadata__"]["string_value"] for i in (0, 1)} == {"decay", "embed"}
        assert _resolved_type(our_docs, "global_step") == "ScalarSerializer"
    with _h5.MdlReader(str(tmp_path / "mixed.mdl")) as reader:
        again = reader.tree()
    assert again["tags"] == tree["tags"] and again["pair"] == tree["pair"] and again["nested"] == tree["nested"]
    assert again["tied"][0] is again["tied"][1]  # one tensor object: written once, then linked


def test_long_runs_take_the_global_step_that_the_rounded_powers_agree_with():
    """After 100000 steps beta2's float32 power is off by a few steps' worth; the global step decides."""
    from wse.checkpoint.formats import cerebras as cerebras_format

    power = torch.tensor(0.999, dtype=torch.float32)
    for _ in range(100_000):
        power = power * 0.999
    saved = {"state": {0: {"exp_avg": torch.zeros(2), "exp_avg_sq": torch.zeros(2),
                           "beta1_power": torch.tensor(0.0), "beta2_power": power},
                       1: {"exp_avg": torch.zeros(2), "exp_avg_sq": torch.zeros(2),
                           "beta1_power": torch.tensor(0.9 ** 4), "beta2_power": torch.tensor(0.999 ** 4)}},
             "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-6, "weight_decay": 0.0,
                               "l2_regularization_rate": 0.0, "correct_bias": True, "amsgrad": False,
                               "params": [0, 1]}]}
    hub = cerebras_format.optimizer_to_hub(saved, ["w", "late"], where="x", global_step=100_000)
    assert float(hub.state["w"]["step"]) == 100_000
    assert float(hub.state["late"]["step"]) == 3  # a parameter that joined late keeps its own count


def test_tensors_of_one_value_are_read_as_tensors(tmp_path):
    checkpoint = C.load(FIXTURES / "full.mdl")
    assert checkpoint.step == 0
    assert checkpoint.model.info("scale") == (torch.bfloat16, (2, 2))
    assert torch.equal(checkpoint.model["fc.bias"], torch.zeros(2))
    assert torch.equal(checkpoint.model["scale"], torch.full((2, 2), 1.5, dtype=torch.bfloat16))
    assert torch.equal(checkpoint.model["ones"], torch.ones(3, dtype=torch.float16))
    assert torch.equal(checkpoint.model["fc.weight"], torch.arange(6.0).reshape(2, 3))
    C.save(checkpoint, tmp_path / "plain.mdl", "cerebras")  # written back as ordinary datasets
    with h5py.File(tmp_path / "plain.mdl", "r") as handle:
        assert handle["model.scale"].dtype == "int16" and handle["model.scale"]._filters == {"32004": (0,)}


def test_an_unsafe_entry_beside_the_training_state_is_left_out_unread(tmp_path):
    """``extra.mdl``: cstorch.save of ``{"model": {"w": ones(2, 2)}, "global_step": 7, "dataloader":
    {"seed": numpy.arange(3), "sampler": fractions.Fraction(1, 3)}}``; the Fraction is dill bytes."""
    import numpy

    checkpoint = C.load(FIXTURES / "extra.mdl")
    assert checkpoint.step == 7 and torch.equal(checkpoint.model["w"], torch.ones(2, 2))
    assert "dataloader" not in checkpoint.metadata.get("cerebras_extra", {})
    assert any("dataloader.sampler" in note and "pickled" in note for note in checkpoint.metadata["notes"])
    with _h5.MdlReader(str(FIXTURES / "extra.mdl")) as reader:
        assert numpy.array_equal(reader.value("dataloader.seed"), numpy.arange(3))
        tree = reader.tree(unreadable=lambda key, error: "left out")
    assert tree["dataloader"]["sampler"] == "left out"
    _h5.write_tree({"seed": numpy.arange(3)}, str(tmp_path / "seed.mdl"))
    with h5py.File(FIXTURES / "extra.mdl", "r") as real, h5py.File(tmp_path / "seed.mdl", "r") as ours:
        assert _leaf_documents(ours)["seed"]["seed.__metadata__"] == \
            _leaf_documents(real)["dataloader.seed"]["dataloader.seed.__metadata__"]
        assert ours["seed"]._filters == real["dataloader.seed"]._filters
