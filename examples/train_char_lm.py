"""Train a small character-level language model with ``Trainer(strategy="wse")``.

    python examples/train_char_lm.py                 # Shakespeare's sonnets, about 30 s on one CPU core
    python examples/train_char_lm.py --max-steps 50  # a quicker look

The strategy allocates the optimizer's state before the first step and steps the LR
(linear warmup, then cosine decay) and weight-decay (cosine) schedules once per optimizer
step. The model is a one-layer GRU over characters; torchmetrics measures perplexity and
next-character accuracy on held-out text. ``wse.callbacks.LearningRateMonitor`` logs the
LR and weight decay of both param groups to ``lightning_logs/char_lm/version_N/metrics.csv``
and writes the planned schedule beside it (``lr_plan.csv``).
"""
import argparse
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, Dataset
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.text import Perplexity

import wse  # noqa: F401  (importing wse registers strategy "wse")
from wse.callbacks import LearningRateMonitor
from wse.optim import AdamW
from wse.optim.lr_scheduler import CosineDecayLR, LinearLR, SequentialLR
from wse.optim.weight_decay_scheduler import CosineDecayWD

TEXT = Path(__file__).resolve().parent / "data" / "sonnets.txt"


class CharWindows(Dataset):
    """Windows of ``length + 1`` characters: the input and, shifted by one, the target."""

    def __init__(self, codes: torch.Tensor, length: int, stride: int):
        self.codes, self.length = codes, length
        self.starts = range(0, len(codes) - length - 1, stride)

    def __len__(self):
        return len(self.starts)

    def __getitem__(self, index):
        window = self.codes[self.starts[index] : self.starts[index] + self.length + 1]
        return window[:-1], window[1:]


class CharLM(L.LightningModule):
    def __init__(self, vocabulary: str, max_steps: int, warmup: int, width: int = 128):
        super().__init__()
        self.vocabulary, self.max_steps, self.warmup = vocabulary, max_steps, warmup
        size = len(vocabulary)
        self.embedding = torch.nn.Embedding(size, 64)
        self.rnn = torch.nn.GRU(64, width, batch_first=True)
        self.head = torch.nn.Linear(width, size)
        self.perplexity = Perplexity()
        self.accuracy = MulticlassAccuracy(num_classes=size, average="micro")

    def forward(self, codes, hidden=None):
        output, hidden = self.rnn(self.embedding(codes), hidden)
        return self.head(output), hidden

    def training_step(self, batch, batch_idx):
        inputs, targets = batch
        logits, _ = self(inputs)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        inputs, targets = batch
        logits, _ = self(inputs)
        self.log("val_loss", torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten()))
        self.perplexity.update(logits, targets)
        self.accuracy.update(logits.flatten(0, 1), targets.flatten())

    def on_validation_epoch_end(self):
        self.log("val_perplexity", self.perplexity.compute())
        self.log("val_accuracy", self.accuracy.compute())
        self.perplexity.reset()
        self.accuracy.reset()

    def configure_optimizers(self):
        # Weight decay for the matrices only; the WD schedule targets the group tagged "decay".
        decay = [p for name, p in self.named_parameters() if p.dim() >= 2 and "embedding" not in name]
        no_decay = [p for name, p in self.named_parameters() if p.dim() < 2 or "embedding" in name]
        optimizer = AdamW(
            [{"params": decay, "tags": "decay"}, {"params": no_decay, "weight_decay": 0.0, "tags": "no_decay"}],
            lr=3e-3,
            weight_decay=0.1,
        )
        peak, decay_steps = 3e-3, self.max_steps - self.warmup
        lr = SequentialLR(
            optimizer,
            [
                LinearLR(optimizer, initial_learning_rate=0.0, end_learning_rate=peak, total_iters=self.warmup),
                CosineDecayLR(optimizer, initial_learning_rate=peak, end_learning_rate=3e-5, total_iters=decay_steps),
            ],
            milestones=[self.warmup],
        )
        wd = CosineDecayWD(optimizer, initial_val=0.1, end_val=0.01, total_iters=self.max_steps, param_group_tags="decay")
        return [optimizer], [{"scheduler": lr, "interval": "step"}, {"scheduler": wd, "interval": "step"}]

    @torch.no_grad()
    def sample(self, prompt: str, characters: int = 160, temperature: float = 0.6, seed: int = 0) -> str:
        """A continuation of ``prompt``, drawn at ``temperature`` with a seeded generator."""
        generator = torch.Generator().manual_seed(seed)
        index = {c: i for i, c in enumerate(self.vocabulary)}
        codes = torch.tensor([[index[c] for c in prompt if c in index]])
        logits, hidden = self(codes)
        out = []
        for _ in range(characters):
            probabilities = torch.softmax(logits[0, -1] / temperature, dim=-1)
            code = torch.multinomial(probabilities, 1, generator=generator)
            out.append(self.vocabulary[code.item()])
            logits, hidden = self(code.view(1, 1), hidden)
        return prompt + "".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, default=TEXT, help="a UTF-8 text file to learn")
    parser.add_argument("--max-steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=64, help="characters per training window")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-dir", type=Path, default=Path("lightning_logs"), help="where the CSV logs go")
    args = parser.parse_args()

    started = time.perf_counter()
    L.seed_everything(args.seed, verbose=False)
    # The tensors are small: one thread is as fast as several and never fights other work for cores.
    torch.set_num_threads(1)
    text = args.text.read_text(encoding="utf-8")
    vocabulary = "".join(sorted(set(text)))
    codes = torch.tensor([vocabulary.index(c) for c in text])
    split = int(0.9 * len(codes))
    # drop_last: every step sees the same shapes, as a static-graph device requires.
    train = DataLoader(CharWindows(codes[:split], args.length, args.length // 2), args.batch_size, shuffle=True, drop_last=True)
    held_out = DataLoader(CharWindows(codes[split:], args.length, args.length), args.batch_size, drop_last=True)

    model = CharLM(vocabulary, args.max_steps, warmup=max(1, args.max_steps // 10))
    trainer = L.Trainer(
        strategy="wse",
        accelerator="cpu",
        devices=1,
        max_steps=args.max_steps,
        val_check_interval=min(200, args.max_steps),
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        # Every 10 steps: the loss, and each group's LR and weight decay (the values used in that step).
        logger=CSVLogger(args.log_dir, name="char_lm"),
        log_every_n_steps=10,
        callbacks=[LearningRateMonitor(log_plan=True)],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, train, held_out)

    metrics = trainer.callback_metrics
    groups = trainer.optimizers[0].param_groups
    print(
        f"\n{len(text)} characters of {args.text.name}, {sum(p.numel() for p in model.parameters())} parameters, "
        f"{trainer.global_step} steps in {time.perf_counter() - started:.1f} s\n"
        f"train loss {metrics['train_loss']:.3f} | held-out loss {metrics['val_loss']:.3f}, "
        f"perplexity {metrics['val_perplexity']:.2f}, next-character accuracy {metrics['val_accuracy']:.1%}\n"
        f"final lr {float(groups[0]['lr']):.2e}, weight decay {float(groups[0]['weight_decay']):.3f} "
        f"(matrices; {float(groups[1]['weight_decay']):.1f} elsewhere)\n"
        f"LR and weight decay per group (lr-AdamW/decay, lr-AdamW/no_decay, ...) in {trainer.logger.log_dir}/metrics.csv, "
        f"the planned schedule beside it in lr_plan.csv\n"
        f"sample:\n{model.sample('Shall I compare thee')}"
    )


if __name__ == "__main__":
    main()
