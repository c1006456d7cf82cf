"""Each format read from what its library writes and written so that its library reads it back."""
import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from wse.checkpoint import LazyStateDict, convert, detect, load, save
from wse.checkpoint.formats import canonical, get, names

from .helpers import QUIET as QUIET_TRAINER, gpt2, quiet_logs


@pytest.fixture(autouse=True)
def _quiet():
    quiet_logs()


def test_registry_names_every_format_and_refuses_unknown_ones():
    assert names() == ("torch", "safetensors", "lightning", "hf", "hf-trainer", "accelerate", "cerebras")
    assert canonical("hf_trainer") == "hf-trainer"
    for name in ("torch", "safetensors", "lightning", "hf", "hf-trainer", "accelerate"):
        module = get(name)
        assert callable(module.sniff) and callable(module.read) and callable(module.write)


def test_safetensors_is_read_lazily_and_written_as_the_library_reads_it(tmp_path):
    tensors = {"b.weight": torch.randn(3, 2).to(torch.bfloat16), "a.bias": torch.arange(4, dtype=torch.int64),
               "flag": torch.tensor([True, False]), "empty": torch.zeros(0, 3)}
    save_file(tensors, str(tmp_path / "in.safetensors"))
    checkpoint = load(tmp_path / "in.safetensors")
    assert isinstance(checkpoint.model, LazyStateDict)
    assert checkpoint.model.info("b.weight") == (torch.bfloat16, (3, 2))
    save(checkpoint, tmp_path / "out.safetensors", "safetensors")
    back = load_file(str(tmp_path / "out.safetensors"))
    assert back.keys() == tensors.keys()
    for key in tensors:
        assert back[key].dtype == tensors[key].dtype and torch.equal(back[key], tensors[key])


def test_torch_files_lose_wrapper_prefixes_and_keep_tied_weights_shared(tmp_path):
    net = torch.nn.Sequential(torch.nn.Embedding(5, 3), torch.nn.Linear(3, 5, bias=False))
    net[1].weight = net[0].weight
    compiled = torch.nn.Module()  # what torch.compile's OptimizedModule holds (without compiling)
    compiled._orig_mod = torch.nn.DataParallel(net)
    wrapped = compiled  # the keys carry _orig_mod. and module. prefixes
    torch.save(wrapped.state_dict(), tmp_path / "wrapped.pt")
    checkpoint = load(tmp_path / "wrapped.pt")
    assert list(checkpoint.model) == ["0.weight", "1.weight"]
    assert checkpoint.metadata["prefix"] == "_orig_mod.module."
    save(checkpoint, tmp_path / "bare.pt", "torch")
    bare = torch.load(tmp_path / "bare.pt", weights_only=True)
    assert bare["0.weight"].data_ptr() == bare["1.weight"].data_ptr()  # stored once, still tied
    fresh = torch.nn.Sequential(torch.nn.Embedding(5, 3), torch.nn.Linear(3, 5, bias=False))
    fresh.load_state_dict(bare)


def test_hf_directory_round_trip_drops_and_restores_the_tied_head(tmp_path):
    from transformers import GPT2LMHeadModel

    model = gpt2()
    model.save_pretrained(tmp_path / "hf")
    assert detect(tmp_path / "hf") == "hf"
    checkpoint = load(tmp_path / "hf")
    assert "lm_head.weight" in checkpoint.model  # save_pretrained dropped it; the hub has the full state dict
    assert list(checkpoint.model) == list(model.state_dict())  # the module's order, not the file's sorted one
    save(checkpoint, tmp_path / "model.pt", "torch")
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert state["lm_head.weight"].data_ptr() == state["transformer.wte.weight"].data_ptr()

    convert(tmp_path / "model.pt", tmp_path / "hf2", to="hf", config=model.config.to_dict(), dtype="bf16")
    assert "lm_head.weight" not in load_file(str(tmp_path / "hf2" / "model.safetensors"))
    reloaded = GPT2LMHeadModel.from_pretrained(tmp_path / "hf2", dtype=torch.bfloat16)
    for name, tensor in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor.to(torch.bfloat16)), name


def test_sharded_hf_directories_are_read(tmp_path):
    model = gpt2()
    model.save_pretrained(tmp_path / "hf", max_shard_size="8KB")
    assert os.path.isfile(tmp_path / "hf" / "model.safetensors.index.json")
    checkpoint = load(tmp_path / "hf")
    for name, tensor in model.state_dict().items():
        assert torch.equal(checkpoint.model[name], tensor), name


def test_a_lightning_checkpoint_written_from_a_bare_file_resumes_at_its_step(tmp_path):
    import lightning as L

    from .helpers import QUIET, LanguageModel, tokens_loader

    model = gpt2()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    for batch in tokens_loader():
        model(**batch).loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "step": 3}, tmp_path / "train.pt")
    convert(tmp_path / "train.pt", tmp_path / "resume.ckpt", to="lightning")

    class Probe(L.Callback):
        def on_train_start(self, trainer, pl_module):
            self.step = trainer.global_step
            self.scheduler_epoch = trainer.lr_scheduler_configs[0].scheduler.last_epoch

    probe = Probe()
    module = LanguageModel(gpt2(seed=3), trainer_groups=False)
    trainer = L.Trainer(max_steps=4, callbacks=[probe], **QUIET)
    trainer.fit(module, tokens_loader(), ckpt_path=str(tmp_path / "resume.ckpt"))
    assert (probe.step, probe.scheduler_epoch, trainer.global_step, len(module.losses)) == (3, 3, 4, 1)


def test_accelerate_sidecar_carries_the_step_and_parameter_order(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "step": 7}, tmp_path / "src.pt")
    convert(tmp_path / "src.pt", tmp_path / "acc", to="accelerate")
    assert json.loads((tmp_path / "acc" / "wse_state.json").read_text())["step"] == 7
    checkpoint = load(tmp_path / "acc")
    assert checkpoint.step == 7
    assert checkpoint.optimizers[0].param_groups[0]["params"] == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_accelerate_with_a_config_gets_its_tied_head_and_parameter_order_back(tmp_path):
    from accelerate import Accelerator

    from .helpers import LanguageModel, tokens_loader

    accelerator = Accelerator(cpu=True)
    model = accelerator.prepare(gpt2())
    optimizer = accelerator.prepare(torch.optim.AdamW(model.parameters(), lr=1e-3))
    model(**next(iter(tokens_loader()))).loss.backward()
    optimizer.step()
    accelerator.save_state(str(tmp_path / "state"))
    assert "lm_head.weight" not in load_file(str(tmp_path / "state" / "model.safetensors"))

    model.config.to_json_file(str(tmp_path / "config.json"))
    config = json.loads((tmp_path / "config.json").read_text())
    config["architectures"] = ["GPT2LMHeadModel"]
    convert(tmp_path / "state", tmp_path / "resume.ckpt", to="lightning", config=config)
    written = torch.load(tmp_path / "resume.ckpt", weights_only=True)
    assert written["global_step"] == 1  # Accelerate keeps no step: the optimizer's own count
    module = LanguageModel(gpt2(seed=4), trainer_groups=False)
    module.load_state_dict(written["state_dict"])  # strict: the tied head is there
    resumed = torch.optim.AdamW(module.parameters(), lr=1e-3)
    resumed.load_state_dict(written["optimizer_states"][0])
    for (name, parameter), (_, source) in zip(module.model.named_parameters(), model.named_parameters()):
        torch.testing.assert_close(resumed.state[parameter]["exp_avg"], optimizer.state[source]["exp_avg"], msg=name)


def test_a_one_group_optimizer_is_split_into_trainers_two_groups(tmp_path):
    model = gpt2()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "step": 0}, tmp_path / "src.pt")
    convert(tmp_path / "src.pt", tmp_path / "checkpoint-0", to="hf-trainer", config=model.config.to_dict())
    groups = torch.load(tmp_path / "checkpoint-0" / "optimizer.pt", weights_only=True)["param_groups"]
    assert [len(group["params"]) for group in groups] == [6, 10]  # matrices; biases and LayerNorms
    assert [group["weight_decay"] for group in groups] == [0.05, 0.05]  # the source decayed every parameter
    scheduler_state = torch.load(tmp_path / "checkpoint-0" / "scheduler.pt", weights_only=True)
    assert scheduler_state["base_lrs"] == [1e-3, 1e-3] and len(scheduler_state["lr_lambdas"]) == 2


def test_accelerate_load_state_accepts_a_written_directory(tmp_path):
    from accelerate import Accelerator

    from .helpers import tokens_loader

    model = gpt2()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 ** step)
    for batch in tokens_loader():
        model(**batch).loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "step": 3}, tmp_path / "train.pt")
    convert(tmp_path / "train.pt", tmp_path / "state", to="accelerate")

    accelerator = Accelerator(cpu=True)
    fresh = gpt2(seed=5)
    fresh_optimizer = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    fresh_scheduler = torch.optim.lr_scheduler.LambdaLR(fresh_optimizer, lambda step: 0.5 ** step)
    fresh, fresh_optimizer, fresh_scheduler = accelerator.prepare(fresh, fresh_optimizer, fresh_scheduler)
    accelerator.load_state(str(tmp_path / "state"))
    assert fresh_scheduler.scheduler.last_epoch == 3
    assert fresh_optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5 ** 3)
    for (name, parameter), source in zip(fresh.named_parameters(), model.parameters()):
        assert torch.equal(parameter, source), name
        assert torch.equal(fresh_optimizer.state[parameter]["exp_avg"], optimizer.state[source]["exp_avg"]), name


def test_rng_state_reaches_accelerate_and_trainer_layouts(tmp_path):
    import random

    import numpy
    from accelerate import PartialState
    from accelerate.checkpointing import load_accelerator_state

    random.seed(1), numpy.random.seed(2), torch.manual_seed(3)
    rng = {"python": random.getstate(), "numpy": numpy.random.get_state(), "cpu": torch.get_rng_state()}
    expected = (random.random(), float(numpy.random.rand()), float(torch.rand(())))
    torch.save({"model": {"w": torch.ones(2)}, "step": 5, "rng": rng}, tmp_path / "src.pt")

    convert(tmp_path / "src.pt", tmp_path / "state", to="accelerate")
    PartialState(cpu=True)
    random.seed(0), numpy.random.seed(0), torch.manual_seed(0)
    load_accelerator_state(str(tmp_path / "state"), models=[], optimizers=[], schedulers=[], dataloaders=[],
                           process_index=0)  # Accelerate's own reader sets the three generators
    assert (random.random(), float(numpy.random.rand()), float(torch.rand(()))) == expected

    convert(tmp_path / "state", tmp_path / "checkpoint-5", to="hf-trainer", config={"model_type": "gpt2"})
    trainer_rng = torch.load(tmp_path / "checkpoint-5" / "rng_state.pth", weights_only=False)
    assert torch.equal(trainer_rng["cpu"], rng["cpu"]) and trainer_rng["python"] == rng["python"]


def test_a_manually_optimized_module_resumes_at_the_step_too(tmp_path):
    import lightning as L

    from .helpers import QUIET, tokens_loader

    class Manual(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
            self.model = gpt2()
            self.steps_run = 0

        def training_step(self, batch, batch_idx):
            self.steps_run += 1
            optimizer = self.optimizers()
            optimizer.zero_grad()
            self.manual_backward(self.model(**batch).loss)
            optimizer.step()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)

    model = gpt2()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(**next(iter(tokens_loader()))).loss.backward()
    optimizer.step()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 3}, tmp_path / "src.pt")
    convert(tmp_path / "src.pt", tmp_path / "resume.ckpt", to="lightning")
    module = Manual()
    trainer = L.Trainer(max_steps=4, **QUIET)
    trainer.fit(module, tokens_loader(), ckpt_path=str(tmp_path / "resume.ckpt"))
    assert (trainer.global_step, module.steps_run) == (4, 1)


def _tiny_lightning_module():
    import lightning as L

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            return self.model(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    return Tiny()


def _tiny_loader(batches: int):
    from torch.utils.data import DataLoader, TensorDataset

    return DataLoader(TensorDataset(torch.randn(2 * batches, 4)), batch_size=2)


def test_lightning_epochs_done_after_fit_ends_and_at_an_epoch_end(tmp_path):
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    every_epoch = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}", save_top_k=-1)
    trainer = L.Trainer(max_steps=6, callbacks=[every_epoch],
                        **dict(QUIET_TRAINER, enable_checkpointing=True))
    trainer.fit(_tiny_lightning_module(), _tiny_loader(batches=2))  # 3 epochs of 2 batches
    trainer.save_checkpoint(tmp_path / "final.ckpt")
    assert torch.load(tmp_path / "final.ckpt", weights_only=True)["epoch"] == 3  # Lightning: 3 epochs done
    assert load(tmp_path / "final.ckpt").metadata["epoch"] == 3.0
    # ModelCheckpoint saves on the last batch of epoch 0, before the epoch is counted completed
    assert torch.load(tmp_path / "epoch=0.ckpt", weights_only=True)["epoch"] == 0
    assert load(tmp_path / "epoch=0.ckpt").metadata["epoch"] == 1.0


def test_a_checkpoint_without_step_written_for_lightning_has_done_no_epoch_and_starts_fresh(tmp_path):
    import lightning as L

    save_file(_tiny_lightning_module().model.state_dict(), str(tmp_path / "model.safetensors"))
    convert(tmp_path / "model.safetensors", tmp_path / "start.ckpt", to="lightning")
    assert load(tmp_path / "start.ckpt").metadata["epoch"] == 0.0

    class Probe(L.Callback):
        def on_train_start(self, trainer, pl_module):
            self.start = (trainer.global_step, trainer.current_epoch)

    probe = Probe()
    trainer = L.Trainer(max_steps=3, callbacks=[probe], **QUIET_TRAINER)
    trainer.fit(_tiny_lightning_module(), _tiny_loader(batches=2), ckpt_path=str(tmp_path / "start.ckpt"))
    assert probe.start == (0, 0)
    fresh = L.Trainer(max_steps=3, **QUIET_TRAINER)
    fresh.fit(_tiny_lightning_module(), _tiny_loader(batches=2))
    assert (trainer.global_step, trainer.current_epoch) == (fresh.global_step, fresh.current_epoch) == (3, 2)
