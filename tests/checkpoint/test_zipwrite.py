"""The streamed torch.save archive writer and the memory-mapped safetensors reader."""
from __future__ import annotations

import zipfile

import pytest
import torch
from safetensors.torch import save_file

from wse.checkpoint import _io, convert, load
from wse.checkpoint._stream_save import lazy_model, save as stream_save
from wse.checkpoint._zipwrite import ALIGNMENT, ZipWriter

# every dtype safetensors and torch share, odd sizes so that tensors sit at unaligned offsets
TENSORS = {
    "a.weight": torch.randn(3, 5),
    "b.mask": torch.tensor([True, False, True]),
    "c.bf16": torch.randn(7).to(torch.bfloat16),
    "d.index": torch.arange(3, dtype=torch.int64),
    "e.empty": torch.empty(0, 4),
    "f.scalar": torch.tensor(2.5, dtype=torch.float64),
    "g.bytes": torch.randint(0, 9, (5,), dtype=torch.uint8),
    "h.f8": torch.randn(3).to(torch.float8_e4m3fn),
    "i.half": torch.randn(3, dtype=torch.float16),
}


def _bytes(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.reshape(-1).view(torch.uint8)


@pytest.mark.parametrize("force_zip64", [False, True])
def test_records_read_back_with_correct_crcs_at_aligned_offsets(tmp_path, force_zip64):
    path = tmp_path / "out.zip"
    payloads = {"empty": b"", "small": b"abc", "big": bytes(range(256)) * 9000, "view": memoryview(b"xyz" * 5)[3:9]}
    with ZipWriter(str(path), folder="arch", force_zip64=force_zip64) as writer:
        for name, data in payloads.items():
            writer.write_record(name, data)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        infos = {info.filename: info for info in archive.infolist()}
        assert list(infos) == [f"arch/{name}" for name in payloads]
        for name, data in payloads.items():
            assert archive.read(f"arch/{name}") == bytes(data)
            with archive.open(f"arch/{name}") as record:
                assert record._orig_compress_start % ALIGNMENT == 0  # where the data begins
        assert all(info.compress_type == zipfile.ZIP_STORED for info in infos.values())


@pytest.mark.parametrize("force_zip64", [False, True])
def test_a_streamed_save_is_what_torch_load_reads(tmp_path, monkeypatch, force_zip64):
    save_file(TENSORS, str(tmp_path / "in.safetensors"))  # written by the safetensors library
    model, _ = _io.read_safetensors(str(tmp_path / "in.safetensors"))
    exp_avg = torch.randn(4, 3).t()  # non-contiguous, in memory: written from its storage
    payload = {"state_dict": lazy_model(model), "optimizer": {"exp_avg": exp_avg, "part": torch.arange(10.0)[2:5],
                                                     "f8": torch.arange(4.0).to(torch.float8_e5m2)},
               "step": 3}
    monkeypatch.setattr(ZipWriter, "__init__", _forced(ZipWriter.__init__, force_zip64))
    stream_save(payload, str(tmp_path / "out.pt"))
    with zipfile.ZipFile(tmp_path / "out.pt") as archive:
        assert archive.testzip() is None
    for mmap in (False, True):
        back = torch.load(tmp_path / "out.pt", weights_only=True, mmap=mmap)
        for name, tensor in TENSORS.items():
            assert back["state_dict"][name].dtype == tensor.dtype and back["state_dict"][name].shape == tensor.shape
            assert torch.equal(_bytes(back["state_dict"][name]), _bytes(tensor)), name
        assert torch.equal(back["optimizer"]["exp_avg"], exp_avg)
        assert torch.equal(back["optimizer"]["part"], torch.tensor([2.0, 3.0, 4.0]))
        assert torch.equal(back["optimizer"]["f8"].float(), torch.arange(4.0))
        assert back["step"] == 3


def _forced(init, force_zip64):
    def forced(self, path, folder="archive", force_zip64_=False):
        init(self, path, folder, force_zip64)
    return forced


def test_mapped_safetensors_tensors_are_private_copies_of_the_file(tmp_path):
    save_file(TENSORS, str(tmp_path / "in.safetensors"))
    model, _ = _io.read_safetensors(str(tmp_path / "in.safetensors"))
    for name, tensor in TENSORS.items():
        assert model[name].dtype == tensor.dtype and model[name].shape == tensor.shape
        assert torch.equal(_bytes(model[name]), _bytes(tensor)), name
    changed = model["a.weight"]
    changed.add_(1.0)  # copy-on-write: neither the file nor the next read sees it
    assert torch.equal(model["a.weight"], TENSORS["a.weight"])


def test_a_truncated_safetensors_file_is_refused(tmp_path):
    save_file({"w": torch.randn(64)}, str(tmp_path / "in.safetensors"))
    data = (tmp_path / "in.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-8])
    with pytest.raises(Exception, match="truncated"):
        _io.read_safetensors(str(tmp_path / "cut.safetensors"))


def test_lightning_resumes_from_a_checkpoint_converted_from_safetensors(tmp_path):
    import lightning as L

    from .helpers import QUIET, LanguageModel, gpt2, tokens_loader

    source = gpt2(seed=1)
    # every key the module's state_dict lists, the tied head as its own copy
    save_file({name: tensor.clone() for name, tensor in source.state_dict().items()}, str(tmp_path / "m.safetensors"))
    convert(tmp_path / "m.safetensors", tmp_path / "resume.ckpt", to="lightning", step=3)
    with zipfile.ZipFile(tmp_path / "resume.ckpt") as archive:
        assert archive.testzip() is None

    class Probe(L.Callback):
        def on_train_start(self, trainer, pl_module):
            self.step = trainer.global_step
            self.weights = {name: tensor.clone() for name, tensor in pl_module.model.state_dict().items()}

    probe = Probe()
    module = LanguageModel(gpt2(seed=3), trainer_groups=False)
    trainer = L.Trainer(max_steps=4, callbacks=[probe], **QUIET)
    trainer.fit(module, tokens_loader(), ckpt_path=str(tmp_path / "resume.ckpt"))
    assert probe.step == 3 and trainer.global_step == 4
    for name, tensor in source.state_dict().items():
        assert torch.equal(probe.weights[name], tensor), name
    assert set(load(tmp_path / "resume.ckpt").model) == set(source.state_dict())


def test_without_pwrite_the_crcs_are_patched_in_all_the_same(tmp_path, monkeypatch):
    monkeypatch.delattr("os.pwrite")  # as on Windows
    with ZipWriter(str(tmp_path / "out.zip")) as writer:
        writer.write_record("a", b"first record")
        writer.write_record("b", bytes(range(256)) * 100)
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        assert archive.testzip() is None
        assert archive.read("archive/a") == b"first record"
        assert archive.read("archive/b") == bytes(range(256)) * 100
