"""The ``wse`` command line: one subcommand per task (``wse schedule`` previews a scheduler config)."""
from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tempfile
from typing import Callable, Dict, List, Optional, Sequence

EXIT_OK = 0
EXIT_USAGE = 2  # bad input of any kind: arguments, config, missing optional dependency
EXIT_BROKEN_PIPE = 1  # the reader of stdout closed it; what Python's documentation recommends


class CommandError(Exception):
    """A failure to report in one line on stderr, without a traceback."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of steps, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 step, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wse",
        description="Tools for wse: run training loops under the rules of a static-graph accelerator.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_schedule_command(commands)
    from .checkpoint.commands import add_convert_command, add_inspect_command  # torch-free until run
    add_convert_command(commands)
    add_inspect_command(commands)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``wse`` command with ``argv`` (default: the process arguments); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error already printed by argparse
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.run(args)
    except CommandError as error:
        print(f"wse {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader stopped early (`wse schedule ... | head`): end quietly, as a Unix filter
        # does, with stdout pointed at devnull so the interpreter's final flush cannot fail again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            pass
        return EXIT_BROKEN_PIPE


# -- wse schedule ----------------------------------------------------------------------

SCHEDULE_HELP = """\
Preview a scheduler config: print the learning rate and weight decay at selected steps,
and optionally write every step to a CSV file and draw them into a PNG.

CONFIG is a YAML or JSON file, or inline YAML, in the configure_scheduler format
({ClassName: {arguments}}, e.g. "CosineDecayLR: {initial_learning_rate: 1.0e-3,
end_learning_rate: 0, total_iters: 1000}"), or the older learning_rate format
(a number, {scheduler: Linear, ...}, or a list of those). A top-level mapping with
`lr` (or `learning_rate`) and `weight_decay` (or `wd`) entries previews both at once.
"""

COLUMNS = ("lr", "weight_decay")


def _add_schedule_command(commands) -> None:
    command = commands.add_parser(
        "schedule",
        help="preview an LR/WD scheduler config as a table, a CSV file or a plot",
        description=SCHEDULE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("config", metavar="CONFIG", help="a YAML/JSON file, or inline YAML")
    command.add_argument(
        "--steps", type=_positive_int, metavar="N",
        help="number of steps to preview (default: the schedule's length plus 10%%, else 1000)",
    )
    command.add_argument("--csv", metavar="FILE", help="write step,lr,weight_decay for every step to FILE")
    command.add_argument("--plot", metavar="FILE.png", help="draw the schedule(s) into a PNG (needs matplotlib)")
    command.set_defaults(run=run_schedule)


def run_schedule(args: argparse.Namespace) -> int:
    from .optim._config_errors import SchedulerConfigError
    from .optim._config_preview import preview_config

    figure_tools = _matplotlib() if args.plot else None  # fail before any work if it is missing
    try:
        preview = preview_config(args.config, args.steps)
    except SchedulerConfigError as error:
        raise CommandError(str(error)) from None
    values = {key: preview.values(key) for key in COLUMNS}
    print(format_table(preview, values))
    if args.csv:
        _write_atomically(args.csv, "w", lambda handle: write_csv(handle, values, preview.steps))
        print(f"wrote {preview.steps} steps to {args.csv}")
    if args.plot:
        _write_atomically(args.plot, "wb", lambda handle: draw_plot(figure_tools, preview, values, handle))
        print(f"plotted to {args.plot}")
    return EXIT_OK


def format_table(preview, values: Dict[str, Optional[List[float]]]) -> str:
    """A header naming the schedulers, then their values at the first, last and milestone steps."""
    from .optim._config_preview import describe, table_steps

    shown = [key for key in COLUMNS if values[key] is not None]
    lines = [f"{key}: {describe(preview.schedulers[key])}" for key in shown]
    lines.append(f"{preview.steps} steps (0 to {preview.steps - 1}); * marks a milestone or the end of a decay")
    lines.append("")
    lines.append(f"  {'step':>9}" + "".join(f"  {key:>12}" for key in shown))
    marks = set(preview.all_marks)
    for step in table_steps(preview.steps, preview.all_marks):
        flag = "*" if step in marks else " "
        lines.append(f"{flag} {step:>9}" + "".join(f"  {values[key][step]:>12.6g}" for key in shown))
    return "\n".join(lines)


def write_csv(handle, values: Dict[str, Optional[List[float]]], steps: int) -> None:
    """``step,lr,weight_decay`` for every step; a column that is not scheduled is left empty."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(("step",) + COLUMNS)
    columns = [values[key] if values[key] is not None else [""] * steps for key in COLUMNS]
    writer.writerows(zip(range(steps), *columns))


def _matplotlib():
    """The matplotlib pieces the plot needs, or a clear error when matplotlib is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise CommandError(
            "--plot needs matplotlib, which is not installed; install it with: pip install 'wse[plot]'"
        ) from None
    return Figure, FigureCanvasAgg


LABELS = {"lr": "learning rate", "weight_decay": "weight decay"}
COLOURS = {"lr": "#1f5fa8", "weight_decay": "#b8460b"}


def draw_plot(figure_tools, preview, values, handle) -> None:
    """One panel per scheduled value against the step, milestones as dotted lines; PNG to ``handle``."""
    from .optim._config_preview import describe

    Figure, FigureCanvasAgg = figure_tools
    shown = [key for key in COLUMNS if values[key] is not None]
    figure = Figure(figsize=(8, 1.0 + 2.6 * len(shown)), dpi=110)
    FigureCanvasAgg(figure)  # the Agg canvas: no display, no global pyplot state
    axes = figure.subplots(len(shown), 1, sharex=True, squeeze=False)[:, 0]
    steps = range(preview.steps)
    for ax, key in zip(axes, shown):
        ax.plot(steps, values[key], color=COLOURS[key], linewidth=1.6)
        for mark in preview.marks[key]:
            ax.axvline(mark, color="0.6", linewidth=0.8, linestyle=":")
        ax.set_ylabel(LABELS[key])
        ax.set_title(f"{key}: {describe(preview.schedulers[key])}", loc="left", fontsize=10)
        ax.grid(alpha=0.25)
        ax.margins(x=0)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4), useMathText=True)
    axes[-1].set_xlabel("step")
    figure.tight_layout()
    figure.savefig(handle, format="png")


def _write_atomically(path: str, mode: str, write: Callable) -> None:
    """Write through a temporary file in the same folder, renamed into place when complete."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".wse-", suffix=".tmp")
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        with os.fdopen(descriptor, mode, **({"newline": "", "encoding": "utf-8"} if "b" not in mode else {})) as handle:
            write(handle)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; give it the usual mode
        os.replace(temporary, path)
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
