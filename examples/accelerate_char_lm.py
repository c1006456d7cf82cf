"""Train the character-level language model of ``train_char_lm.py`` in an Accelerate loop with ``wse.accelerate``.

    python examples/accelerate_char_lm.py                       # one process, about 30 s on one CPU core
    python examples/accelerate_char_lm.py --max-steps 50        # a quicker look
    ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 examples/accelerate_char_lm.py   # two CPU processes (gloo)

The loop is the one an Accelerate user writes; ``wse.accelerate.prepare`` replaces
``accelerator.prepare``. It allocates the optimizer's state after Accelerate placed it,
steps the LR (linear warmup, then cosine decay) and weight-decay (cosine) schedules
exactly once per optimizer update on every process (with ``--accumulate 4``, once per
four batches), and runs every update as a step of the static-graph device: the first
captured, the next three verified. ``--save DIR`` saves the state at the end
(``accelerator.save_state``: model, optimizer, schedulers, RNG and the wse sidecar with
the global step) and ``--resume DIR`` continues from it.
"""
import argparse
import math
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, Dataset, Subset

import wse.accelerate
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


class CharLM(torch.nn.Module):
    def __init__(self, vocabulary_size: int, width: int = 128):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocabulary_size, 64)
        self.rnn = torch.nn.GRU(64, width, batch_first=True)
        self.head = torch.nn.Linear(width, vocabulary_size)

    def forward(self, codes, hidden=None):
        output, hidden = self.rnn(self.embedding(codes), hidden)
        return self.head(output), hidden


def optimizer_and_schedules(model: CharLM, max_steps: int, warmup: int):
    # Weight decay for the matrices only; the WD schedule targets the group tagged "decay".
    decay = [p for name, p in model.named_parameters() if p.dim() >= 2 and "embedding" not in name]
    no_decay = [p for name, p in model.named_parameters() if p.dim() < 2 or "embedding" in name]
    optimizer = AdamW([{"params": decay, "tags": "decay"}, {"params": no_decay, "weight_decay": 0.0}], lr=3e-3, weight_decay=0.1)
    peak = 3e-3
    lr = SequentialLR(
        optimizer,
        [
            LinearLR(optimizer, initial_learning_rate=0.0, end_learning_rate=peak, total_iters=warmup),
            CosineDecayLR(optimizer, initial_learning_rate=peak, end_learning_rate=3e-5, total_iters=max_steps - warmup),
        ],
        milestones=[warmup],
    )
    wd = CosineDecayWD(optimizer, initial_val=0.1, end_val=0.01, total_iters=max_steps, param_group_tags="decay")
    return optimizer, lr, wd


@torch.no_grad()
def evaluate(accelerator: Accelerator, model: CharLM, held_out: DataLoader):
    """Held-out loss, perplexity and next-character accuracy over every process's share."""
    model.eval()
    losses, hits, count = [], 0, 0
    for inputs, targets in held_out:
        logits, _ = model(inputs)
        logits, targets = accelerator.gather_for_metrics((logits, targets))
        losses.append(torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum"))
        hits += (logits.argmax(-1) == targets).sum()
        count += targets.numel()
    model.train()
    loss = (torch.stack(losses).sum() / count).item()
    return loss, math.exp(loss), (hits / count).item()


@torch.no_grad()
def sample(model: CharLM, vocabulary: str, prompt: str, characters: int = 160, temperature: float = 0.6) -> str:
    generator = torch.Generator().manual_seed(0)
    index = {c: i for i, c in enumerate(vocabulary)}
    codes = torch.tensor([[index[c] for c in prompt if c in index]])
    logits, hidden = model(codes)
    out = []
    for _ in range(characters):
        code = torch.multinomial(torch.softmax(logits[0, -1] / temperature, dim=-1), 1, generator=generator)
        out.append(vocabulary[code.item()])
        logits, hidden = model(code.view(1, 1), hidden)
    return prompt + "".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, default=TEXT, help="a UTF-8 text file to learn")
    parser.add_argument("--max-steps", type=int, default=600, help="optimizer updates")
    parser.add_argument("--batch-size", type=int, default=32, help="per process")
    parser.add_argument("--accumulate", type=int, default=1, help="gradient_accumulation_steps")
    parser.add_argument("--length", type=int, default=64, help="characters per training window")
    parser.add_argument("--compile", action="store_true", help="run the verified steps through torch.compile")
    parser.add_argument("--save", type=Path, help="accelerator.save_state here at the end")
    parser.add_argument("--resume", type=Path, help="accelerator.load_state from here first")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    started = time.perf_counter()
    accelerator = Accelerator(gradient_accumulation_steps=args.accumulate)
    set_seed(args.seed)
    # The tensors are small: one thread is as fast as several and never fights other work for cores.
    torch.set_num_threads(1)
    text = args.text.read_text(encoding="utf-8")
    vocabulary = "".join(sorted(set(text)))
    codes = torch.tensor([vocabulary.index(c) for c in text])
    split = int(0.9 * len(codes))
    # Every update must see the same shapes and the same number of micro-batches, as a
    # static-graph device requires: whole batches only (drop_last), and a number of batches
    # per process that is a multiple of the accumulation (Accelerate ends a cycle at the end
    # of the dataloader).
    windows = CharWindows(codes[:split], args.length, args.length // 2)
    per_epoch = args.batch_size * accelerator.num_processes * args.accumulate
    windows = Subset(windows, range(len(windows) // per_epoch * per_epoch))
    train = DataLoader(windows, args.batch_size, shuffle=True, drop_last=True)
    held_out = DataLoader(CharWindows(codes[split:], args.length, args.length), 8, drop_last=True)

    model = CharLM(len(vocabulary))
    optimizer, lr, wd = optimizer_and_schedules(model, args.max_steps, warmup=max(1, args.max_steps // 10))
    model, optimizer, train, held_out, lr, wd = wse.accelerate.prepare(
        accelerator, model, optimizer, train, held_out, lr, wd, compile=args.compile
    )
    run = wse.accelerate.state(accelerator)
    if args.resume:
        accelerator.load_state(str(args.resume))  # the global step comes back with it

    # A resumed run skips the batches of the current epoch that it already trained on.
    updates_per_epoch = len(train) // args.accumulate
    skip = (run.global_step % updates_per_epoch) * args.accumulate
    loss = None
    while run.global_step < args.max_steps:
        batches = accelerator.skip_first_batches(train, skip) if skip else train
        skip = 0
        for inputs, targets in batches:
            with accelerator.accumulate(model):
                logits, _ = model(inputs)
                loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
                accelerator.backward(loss)
                optimizer.step()
                lr.step()  # kept from the plain Accelerate loop: wse already stepped it, once per update
                wd.step()
                optimizer.zero_grad()
            if accelerator.sync_gradients and run.global_step >= args.max_steps:
                break
    held_out_loss, perplexity, accuracy = evaluate(accelerator, model, held_out)
    if args.save:
        accelerator.save_state(str(args.save))
    accelerator.end_training()  # the device's closing line

    groups = optimizer.param_groups
    accelerator.print(
        f"\n{len(text)} characters of {args.text.name}, {sum(p.numel() for p in model.parameters())} parameters, "
        f"{run.global_step} updates on {accelerator.num_processes} process{'' if accelerator.num_processes == 1 else 'es'} in {time.perf_counter() - started:.1f} s\n"
        f"train loss {loss.item():.3f} | held-out loss {held_out_loss:.3f}, perplexity {perplexity:.2f}, "
        f"next-character accuracy {accuracy:.1%}\n"
        f"final lr {float(groups[0]['lr']):.2e}, weight decay {float(groups[0]['weight_decay']):.3f} "
        f"(matrices; {float(groups[1]['weight_decay']):.1f} elsewhere)"
    )
    if accelerator.is_main_process:
        print(f"sample:\n{sample(accelerator.unwrap_model(model), vocabulary, 'Shall I compare thee')}")


if __name__ == "__main__":
    main()
