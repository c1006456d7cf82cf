"""Tiny config-built transformers models, fixed data and each framework's training loop.

The acid tests run and compare the loops of Hugging Face Trainer, Lightning and Accelerate.
"""
from __future__ import annotations

import logging
import warnings
from typing import Dict, List

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

VOCAB = 64
SEQUENCE = 8
BATCH = 4
BATCHES_PER_EPOCH = 3
LR = 5e-3
WEIGHT_DECAY = 0.1
WARMUP = 2
TOTAL_STEPS = 6
RESUME_AT = 3  # an epoch boundary: every framework resumes a plain DataLoader at its first batch

QUIET = dict(accelerator="cpu", devices=1, enable_progress_bar=False, enable_model_summary=False, logger=False,
             enable_checkpointing=False)


def gpt2_config():
    from transformers import GPT2Config

    return GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=VOCAB, n_positions=SEQUENCE, resid_pdrop=0.0,
                      embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)


def gpt2(seed: int = 0):
    from transformers import GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(gpt2_config())


class Tokens(Dataset):
    """Fixed random token sequences; the labels are the inputs (causal language modelling)."""

    def __init__(self, count: int = BATCH * BATCHES_PER_EPOCH, seed: int = 1):
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, VOCAB, (count, SEQUENCE), generator=generator)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        return {"input_ids": self.ids[index], "labels": self.ids[index]}


def linear_warmup(step: int) -> float:
    """The LR factor of transformers' linear schedule with warmup (get_linear_schedule_with_warmup)."""
    if step < WARMUP:
        return step / max(1, WARMUP)
    return max(0.0, (TOTAL_STEPS - step) / max(1, TOTAL_STEPS - WARMUP))


def flat_parameters(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


# -- Hugging Face Trainer -------------------------------------------------------------------

def hf_trainer(model, output_dir: str, max_steps: int, save_steps: int, record: List[float], **overrides):
    """A Trainer over ``Tokens`` in order (no shuffling), no clipping, logging off; it appends
    every training loss to ``record``."""
    from torch.utils.data import SequentialSampler
    from transformers import Trainer, TrainingArguments

    class RecordingTrainer(Trainer):
        def _get_train_sampler(self, *args, **kwargs):
            return SequentialSampler(self.train_dataset)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # The model's own mean loss, as a Lightning training_step computes it (Trainer would
            # divide the summed loss by all label tokens, counting the one the shift drops).
            loss = super().compute_loss(model, inputs, return_outputs, None)
            record.append(float((loss[0] if return_outputs else loss).detach()))
            return loss

    options = dict(output_dir=output_dir, max_steps=max_steps, per_device_train_batch_size=BATCH,
                   learning_rate=LR, weight_decay=WEIGHT_DECAY, lr_scheduler_type="linear", warmup_steps=WARMUP,
                   max_grad_norm=0.0, save_strategy="steps", save_steps=save_steps, logging_strategy="no",
                   report_to=[], disable_tqdm=True, use_cpu=True, seed=0, dataloader_num_workers=0,
                   save_only_model=False)
    options.update(overrides)
    args = TrainingArguments(**options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = RecordingTrainer(model=model, args=args, train_dataset=Tokens())
    return trainer


def hf_schedule_with_total(optimizer):
    """The schedule Trainer builds for ``lr_scheduler_type="linear"`` over ``TOTAL_STEPS``."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup)


# -- Lightning ------------------------------------------------------------------------------

class LanguageModel(L.LightningModule):
    """``self.model`` is a transformers model; AdamW and the linear warmup schedule as Trainer
    builds them. ``trainer_groups``: Trainer's two param groups (matrices take weight decay,
    biases and LayerNorm parameters, the 1-D ones in GPT-2, do not); else one group."""

    def __init__(self, model, weight_decay: float = WEIGHT_DECAY, trainer_groups: bool = True):
        super().__init__()
        self.model = model
        self.weight_decay = weight_decay
        self.trainer_groups = trainer_groups
        self.losses: List[float] = []

    def training_step(self, batch, batch_idx):
        loss = self.model(**batch).loss
        self.losses.append(float(loss.detach()))
        return loss

    def configure_optimizers(self):
        if self.trainer_groups:
            params = list(self.model.parameters())
            groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": self.weight_decay},
                      {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        else:
            groups = [{"params": list(self.parameters()), "weight_decay": self.weight_decay}]
        optimizer = torch.optim.AdamW(groups, lr=LR)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup)
        return [optimizer], [{"scheduler": scheduler, "interval": "step"}]


def tokens_loader() -> DataLoader:
    return DataLoader(Tokens(), batch_size=BATCH, shuffle=False)


def quiet_logs():
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "transformers", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
