"""``wse convert`` and ``wse inspect``: the command-line faces of checkpoint migration.

Importing this module imports no torch: the work is imported when a command runs, so that
``wse --help`` and ``wse schedule`` stay fast.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

FORMAT_NAMES = ("torch", "safetensors", "lightning", "hf", "hf-trainer", "accelerate", "cerebras")

CONVERT_HELP = """\
Convert a checkpoint between formats, keeping the optimizer state, the LR scheduler state and
the global step where both formats can hold them, so that training resumes where it stopped.

Formats: torch (a torch.save file), safetensors (model only), lightning (a .ckpt for
Trainer.fit(ckpt_path=...)), hf (a save_pretrained directory), hf-trainer (a Trainer
checkpoint-N/ directory), accelerate (an Accelerator.save_state directory), cerebras (a .mdl
file; needs pip install 'wse[cerebras]'). The source format is detected unless --from names it.

Nothing is written unless the whole conversion succeeds. Files that need unpickling (HF
training_args.bin) are skipped unless --unsafe-load.
"""

INSPECT_HELP = """\
Show what a checkpoint holds: its format and versions, the global step, the model's tensors
(count, dtypes, bytes), the optimizer's algorithm and state keys, the schedulers, and which
files are pickles (and whether they can be read without running code from them).
"""


def add_convert_command(commands) -> None:
    command = commands.add_parser("convert", help="convert a checkpoint to another format, optimizer state included",
                                  description=CONVERT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_argument("src", metavar="SRC", help="the checkpoint to read (file or directory)")
    command.add_argument("dst", metavar="DST", help="where to write the converted checkpoint (must not exist)")
    command.add_argument("--to", required=True, choices=FORMAT_NAMES, metavar="FORMAT",
                         help=f"the format to write: {', '.join(FORMAT_NAMES)}")
    command.add_argument("--from", dest="from_format", choices=FORMAT_NAMES, metavar="FORMAT",
                         help="the format of SRC (default: detected)")
    command.add_argument("--model-only", action="store_true",
                         help="convert the model tensors only (no optimizer, scheduler, step)")
    command.add_argument("--rename", metavar="RULES.yaml",
                         help="regex rename rules for model keys: a list of [pattern, replacement]; strict: every "
                              "key must match a rule unless the file sets 'strict: false'")
    command.add_argument("--dtype", metavar="DTYPE", help="cast the model's floating-point tensors "
                         "(float32, float16, bfloat16); optimizer state keeps its precision")
    command.add_argument("--config", metavar="CONFIG.json", help="the Hugging Face config.json, for --to hf / hf-trainer")
    command.add_argument("--param-names", metavar="FILE",
                         help="the parameter names in optimizer order (one a line, or a JSON list, or a JSON list "
                              "of lists per param group), when the source does not record them")
    command.add_argument("--step", type=int, metavar="N", help="the global step, when the source does not record it")
    command.add_argument("--prefix", metavar="PREFIX",
                         help="for --to lightning: the LightningModule attribute holding the model, with a dot "
                              "(default 'model.'; '' for none); for --to cerebras: put before every model name "
                              "('model.' for the Model Zoo 2.x Trainer; default: a Cerebras source's own, else none)")
    command.add_argument("--train-batch-size", type=int, metavar="N",
                         help="for --to hf-trainer: the per-device batch size recorded in trainer_state.json "
                              "(Trainer warns when it differs from its own)")
    command.add_argument("--optimizer-layout", choices=("torch", "transformers", "cerebras"),
                         help="the optimizer state layout to write (default: torch.optim's)")
    command.add_argument("--approximate", action="store_true",
                         help="accept an optimizer whose definition the target's differs from (e.g. where eps enters)")
    command.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    command.add_argument("--unsafe-load", action="store_true",
                         help="also unpickle files that need it; this runs code from the checkpoint: only for "
                              "files you trust")
    command.set_defaults(run=run_convert)


def add_inspect_command(commands) -> None:
    command = commands.add_parser("inspect", help="show what a checkpoint holds", description=INSPECT_HELP,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_argument("path", metavar="PATH", help="a checkpoint file or directory")
    command.add_argument("--from", dest="from_format", choices=FORMAT_NAMES, metavar="FORMAT",
                         help="its format (default: detected)")
    command.add_argument("--json", action="store_true", help="print the report as JSON")
    command.add_argument("--unsafe-load", action="store_true", help="also unpickle files that need it (runs code)")
    command.set_defaults(run=run_inspect)


def _error(message: str):
    from ..cli import CommandError

    return CommandError(message)


def run_convert(args: argparse.Namespace) -> int:
    from . import convert
    from .hub import CheckpointError

    options = {}
    if args.param_names:
        options["param_names"] = read_param_names(args.param_names)
    if args.prefix is not None:
        options["prefix"] = args.prefix
    if args.optimizer_layout:
        options["optimizer_layout"] = args.optimizer_layout
    if args.train_batch_size is not None:
        options["trainer_state"] = {"train_batch_size": args.train_batch_size}
    try:
        checkpoint = convert(args.src, args.dst, to=args.to, from_format=args.from_format, model_only=args.model_only,
                             rename=args.rename, dtype=args.dtype, config=args.config, unsafe=args.unsafe_load,
                             step=args.step, approximate=args.approximate, overwrite=args.overwrite,
                             progress=sys.stderr.isatty(), **options)
    except CheckpointError as error:
        raise _error(str(error)) from None
    source = checkpoint.metadata.get("format", "?")
    parts = [f"{len(checkpoint.model)} tensors"]
    if checkpoint.optimizers:
        parts.append("optimizer " + ", ".join(opt.algorithm for opt in checkpoint.optimizers))
    if checkpoint.schedulers:
        parts.append(f"{len(checkpoint.schedulers)} scheduler{'s' if len(checkpoint.schedulers) > 1 else ''}")
    if checkpoint.step is not None:
        parts.append(f"step {checkpoint.step}")
    print(f"converted {args.src} ({source}) to {args.dst} ({args.to}): {', '.join(parts)}")
    for note in checkpoint.metadata.get("notes") or []:
        print(f"note: {note}")
    return 0


def read_param_names(path: str):
    """Parameter names from a file: a JSON list (of names, or of lists per group), or one per line."""
    if not os.path.isfile(path):
        raise _error(f"--param-names {path}: no such file")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if text.lstrip().startswith("["):
        try:
            names = json.loads(text)
        except json.JSONDecodeError as error:
            raise _error(f"--param-names {path}: not valid JSON: {error}") from None
        return names
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def run_inspect(args: argparse.Namespace) -> int:
    from .hub import CheckpointError
    from .inspect import format_report, inspect

    try:
        report = inspect(args.path, args.from_format, unsafe=args.unsafe_load)
    except CheckpointError as error:
        raise _error(str(error)) from None
    print(json.dumps(report, indent=2, default=str) if args.json else format_report(report))
    return 0
