"""The acid test: a run converted between frameworks continues as the source would have.

Train N steps in one framework, convert, resume in another: the next steps' losses and
parameters equal those of the source continuing (same data, float tolerance).

The foreign checkpoints are written by the real libraries (transformers' Trainer, Lightning,
Accelerate) during each test; the tiny GPT-2 is built from a config, nothing is downloaded.
"""

import lightning as L
import pytest
import torch

from wse.callbacks import StateDictTranslation
from wse.checkpoint import convert, detect
from wse.lightning import WSEStrategy

from .helpers import (BATCH, LR, QUIET, RESUME_AT, TOTAL_STEPS, WEIGHT_DECAY, LanguageModel, flat_parameters, gpt2,
                      hf_trainer, linear_warmup, quiet_logs, tokens_loader)

pytestmark = pytest.mark.slow

K = TOTAL_STEPS - RESUME_AT


@pytest.fixture(autouse=True)
def _quiet():
    quiet_logs()


def assert_same_parameters(expected, actual, atol=1e-6):
    assert expected.keys() == actual.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], atol=atol, rtol=1e-5, msg=name)


def test_hf_trainer_to_lightning_under_wse_strategy(tmp_path):
    source_losses = []
    source = gpt2()
    hf_trainer(source, str(tmp_path / "hf"), TOTAL_STEPS, RESUME_AT, source_losses).train()
    checkpoint_dir = tmp_path / "hf" / f"checkpoint-{RESUME_AT}"
    assert detect(checkpoint_dir) == "hf-trainer"

    converted = tmp_path / "resume.ckpt"
    convert(checkpoint_dir, converted, to="lightning")
    assert detect(converted) == "lightning"

    module = LanguageModel(gpt2(seed=7))  # other initial weights: everything must come from the file
    trainer = L.Trainer(strategy=WSEStrategy(check="off"), max_steps=TOTAL_STEPS, **QUIET)
    trainer.fit(module, tokens_loader(), ckpt_path=str(converted))

    assert trainer.global_step == TOTAL_STEPS
    assert module.losses == pytest.approx(source_losses[RESUME_AT:], rel=1e-5, abs=1e-6)
    assert_same_parameters(flat_parameters(source), flat_parameters(module.model))


def test_lightning_to_hf_trainer(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    source = LanguageModel(gpt2())
    saver = ModelCheckpoint(dirpath=tmp_path / "pl", every_n_train_steps=RESUME_AT, save_top_k=-1)
    options = {k: v for k, v in QUIET.items() if k != "enable_checkpointing"}
    L.Trainer(max_steps=TOTAL_STEPS, callbacks=[saver], **options).fit(source, tokens_loader())
    lightning_checkpoint = tmp_path / "pl" / f"epoch=0-step={RESUME_AT}.ckpt"
    assert detect(lightning_checkpoint) == "lightning"

    config = tmp_path / "config.json"
    source.model.config.to_json_file(str(config))
    converted = tmp_path / f"checkpoint-{RESUME_AT}"
    convert(lightning_checkpoint, converted, to="hf-trainer", config=config,
            trainer_state={"train_batch_size": BATCH})

    resumed_losses = []
    target = gpt2(seed=7)
    hf_trainer(target, str(tmp_path / "hf"), TOTAL_STEPS, 1000, resumed_losses).train(resume_from_checkpoint=str(converted))

    assert resumed_losses == pytest.approx(source.losses[RESUME_AT:], rel=1e-5, abs=1e-6)
    assert_same_parameters(flat_parameters(source.model), flat_parameters(target))


def test_accelerate_to_lightning_through_the_callback(tmp_path):
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    model = gpt2()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, tokens_loader(), scheduler)
    source_losses, step = [], 0
    while step < TOTAL_STEPS:
        for batch in loader:
            if step == RESUME_AT:
                accelerator.save_state(str(tmp_path / "accelerate"))
            loss = model(**batch).loss
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            source_losses.append(float(loss.detach()))
            step += 1
            if step == TOTAL_STEPS:
                break
    assert detect(tmp_path / "accelerate") == "accelerate"

    module = LanguageModel(gpt2(seed=7), trainer_groups=False)
    translation = StateDictTranslation(load_from=str(tmp_path / "accelerate"))
    trainer = L.Trainer(strategy=WSEStrategy(check="off"), max_steps=TOTAL_STEPS, callbacks=[translation], **QUIET)
    trainer.fit(module, tokens_loader())

    assert translation.loaded_step == RESUME_AT
    assert trainer.global_step == TOTAL_STEPS
    assert module.losses == pytest.approx(source_losses[RESUME_AT:], rel=1e-5, abs=1e-6)
    assert_same_parameters(flat_parameters(accelerator.unwrap_model(model)), flat_parameters(module.model))
