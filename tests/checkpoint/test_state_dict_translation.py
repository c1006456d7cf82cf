"""``wse.callbacks.StateDictTranslation``: load any format at fit start, export at each checkpoint."""
import lightning as L
import pytest
import torch
from safetensors.torch import load_file, save_file

from wse.callbacks import StateDictTranslation
from wse.checkpoint import CheckpointError, detect, load

from .helpers import QUIET, LanguageModel, gpt2, quiet_logs, tokens_loader

WITH_CHECKPOINTS = {k: v for k, v in QUIET.items() if k != "enable_checkpointing"}


@pytest.fixture(autouse=True)
def _quiet():
    quiet_logs()


@pytest.mark.slow
def test_exports_follow_lightning_checkpoints_and_hf_loads_them(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint
    from transformers import GPT2LMHeadModel

    module = LanguageModel(gpt2(), trainer_groups=False)
    export = StateDictTranslation(export_to=str(tmp_path / "export" / "checkpoint-{step}"), export_format="hf-trainer")
    saver = ModelCheckpoint(dirpath=tmp_path / "pl", every_n_train_steps=2, save_top_k=-1)
    L.Trainer(max_steps=4, callbacks=[saver, export], **WITH_CHECKPOINTS).fit(module, tokens_loader())

    assert export.exports == [str(tmp_path / "export" / "checkpoint-2"), str(tmp_path / "export" / "checkpoint-4")]
    last = tmp_path / "export" / "checkpoint-4"
    assert detect(last) == "hf-trainer"
    checkpoint = load(last)
    assert checkpoint.step == 4 and checkpoint.optimizers[0].algorithm == "AdamW"
    reloaded = GPT2LMHeadModel.from_pretrained(last)
    for name, tensor in module.model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor), name


def test_model_only_load_from_safetensors_and_export_at_the_end(tmp_path):
    source = gpt2(seed=1)
    save_file({k: v.contiguous() for k, v in source.state_dict().items() if k != "lm_head.weight"},
              str(tmp_path / "weights.safetensors"))
    module = LanguageModel(gpt2(seed=2), trainer_groups=False)
    callback = StateDictTranslation(load_from=str(tmp_path / "weights.safetensors"), load_optimizer_states=False,
                                    export_to=str(tmp_path / "final.safetensors"), export_format="safetensors",
                                    export_on="end")

    class Probe(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == 0:
                self.first = {k: v.clone() for k, v in pl_module.model.state_dict().items()}

    probe = Probe()
    trainer = L.Trainer(max_steps=1, callbacks=[callback, probe], **QUIET)
    trainer.fit(module, tokens_loader())
    for name, tensor in source.state_dict().items():  # the tied head came back from the embedding
        assert torch.equal(probe.first[name], tensor), name
    assert trainer.global_step == 1 and callback.loaded_step is None
    final = load_file(str(tmp_path / "final.safetensors"))
    assert torch.equal(final["transformer.wte.weight"], module.model.transformer.wte.weight.detach())


def test_a_checkpoint_that_does_not_fit_the_module_is_a_clear_error(tmp_path):
    save_file({"transformer.wte.weight": torch.zeros(3, 3)}, str(tmp_path / "other.safetensors"))
    callback = StateDictTranslation(load_from=str(tmp_path / "other.safetensors"), load_optimizer_states=False)
    trainer = L.Trainer(max_steps=1, callbacks=[callback], **QUIET)
    with pytest.raises(CheckpointError, match="does not fit the LightningModule: missing .*model.transformer.wpe"):
        trainer.fit(LanguageModel(gpt2(), trainer_groups=False), tokens_loader())
    loose = StateDictTranslation(load_from=str(tmp_path / "other.safetensors"), load_optimizer_states=False, strict=False)
    with pytest.raises(CheckpointError, match=r"'model.transformer.wte.weight' has shape \(3, 3\) in the checkpoint"):
        L.Trainer(max_steps=1, callbacks=[loose], **QUIET).fit(LanguageModel(gpt2(), trainer_groups=False),
                                                                tokens_loader())


def test_arguments_are_checked_when_the_callback_is_built(tmp_path):
    with pytest.raises(ValueError, match="export_to needs export_format"):
        StateDictTranslation(export_to=str(tmp_path / "x"))
    with pytest.raises(CheckpointError, match="unknown checkpoint format 'onnx'"):
        StateDictTranslation(export_to=str(tmp_path / "x"), export_format="onnx")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        StateDictTranslation(load_from=str(tmp_path / "missing.ckpt"))
