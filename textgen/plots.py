"""The training-curve PNG: train and validation loss per epoch.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend switch), so it works
headless and never changes the backend of a program that imports textgen.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def plot_training_curve(history: Mapping[str, Sequence[float]], path: str | os.PathLike, title: str = "") -> Path:
    """Writes a PNG of `history["loss"]` and, when present, `history["val_loss"]` per epoch.

    Args:
        history: per-epoch metric lists, as in `keras.callbacks.History.history`.
        path: the PNG to write (atomically: temporary name, then rename).
        title: figure title, e.g. the model and dataset.
    """
    path = Path(path)
    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        values = list(history.get(key, []))
        if values:
            ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_ylabel("loss (nats)")
    ax.set_title(title or "training curve")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure_atomic(fig, path)


def save_figure_atomic(fig: Figure, path: str | os.PathLike) -> Path:
    """Saves `fig` as PNG under a temporary name beside `path`, then renames it over `path`."""
    from textgen.atomic import replacing

    path = Path(path)
    with replacing(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return path
