"""Writing a planned schedule where a user will see it: a CSV table, or a matplotlib figure."""
from __future__ import annotations

import csv
import os
import tempfile

from .naming import MOMENTUM_SUFFIX, WEIGHT_DECAY_SUFFIX
from .plan import Plan

PLAN_FILENAME = "lr_plan.csv"


def write_plan_csv(plan: Plan, directory: str, filename: str = PLAN_FILENAME) -> str:
    """Write ``plan`` as ``<directory>/<filename>``: a ``step`` column and one column per series.

    Written to a temporary file first and renamed, so a reader never sees half a table.
    Returns the path written.
    """
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, filename)
    names = list(plan.series)
    columns = [plan.series[name] for name in names]
    handle, temporary = tempfile.mkstemp(prefix=f".{filename}.", dir=directory)
    try:
        with os.fdopen(handle, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["step", *names])
            for row, step in enumerate(plan.steps):
                writer.writerow([step, *(repr(column[row]) for column in columns)])
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


def _panel(name: str) -> str:
    if name.endswith(WEIGHT_DECAY_SUFFIX):
        return "weight decay"
    if name.endswith(MOMENTUM_SUFFIX):
        return "momentum"
    return "learning rate"


def plan_figure(plan: Plan, title: str = "Planned schedule"):
    """A matplotlib ``Figure`` of ``plan``: one panel per quantity (learning rate, weight decay, momentum).

    Built without ``pyplot``, so it touches no global figure state and needs no display.
    Raises ``ImportError`` naming the extra to install when matplotlib is missing.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("Rendering a plan as a figure needs matplotlib: pip install 'wse[plot]'.") from error
    panels: dict = {}
    for name in plan.series:
        panels.setdefault(_panel(name), []).append(name)
    figure = Figure(figsize=(7, 2.6 * max(1, len(panels))), layout="constrained")
    axes = figure.subplots(max(1, len(panels)), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (quantity, names) in zip(axes, panels.items()):
        for name in names:
            ax.plot(plan.steps, plan.series[name], label=name)
        ax.set_ylabel(quantity)
        ax.legend(fontsize="small")
    axes[-1].set_xlabel("optimizer step")
    figure.suptitle(title)
    return figure
