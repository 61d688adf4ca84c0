"""Pictures of scores: a text histogram for the terminal, and a PNG with matplotlib."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.io.atomic import writing
from dupfind.io.destinations import check_destination
from dupfind.quality.evaluation.labeled import Labels

Scores = NDArray[np.float32]


def histogram(scores: Scores, labels: Labels, threshold: float, bins: int = 20, width: int = 28) -> list[str]:
    """A text histogram of the scores of duplicates and non-duplicates, best first, with a line at the threshold."""
    low, high = min(float(scores.min()), threshold), max(float(scores.max()), threshold)
    step = (high - low) / bins or 1.0
    below = math.ceil((threshold - low) / step)
    count = below + max(1, math.ceil((high - threshold) / step))
    edges = threshold + step * np.arange(-below, count - below + 1)
    edges[below] = threshold
    duplicates = np.histogram(scores[labels], edges)[0]
    others = np.histogram(scores[~labels], edges)[0]
    scale = width / max(int(duplicates.max()), int(others.max()), 1)
    lines = [
        f"{edges[i]:6.3f}–{edges[i + 1]:6.3f}  {'█' * math.ceil(duplicates[i] * scale):<{width}} {duplicates[i]:>7}"
        f"  {'░' * math.ceil(others[i] * scale):<{width}} {others[i]:>7}"
        for i in reversed(range(count))
    ]
    lines.insert(count - below, f"{'':─>13}  threshold {threshold:.3f}: predicted duplicates above")
    return [f"{'score':>13}  {'duplicates':<{width}} {'':>7}  non-duplicates", *lines]


def check_plot_target(path: str) -> None:
    """Fail early when a plot cannot be written: matplotlib missing, or a folder that is not there or not writable."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise DupfindError("plotting needs matplotlib: pip install matplotlib") from exc
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    if plot_format(path) not in formats:
        raise DupfindError(f"--plot {path}: unknown picture format (end it in .{', .'.join(sorted(formats))})")
    check_destination(str(Path(path).expanduser()))


def plot_format(path: str) -> str:
    """The picture format that `path` asks for by its extension: png without one (/dev/stdout)."""
    return Path(path).suffix.lstrip(".").lower() or "png"


def plot_scores(scores: Scores, labels: Labels, threshold: float, path: str) -> None:
    """Write a picture of the score distributions of duplicates and non-duplicates, with the threshold, in the
    format of `path`'s extension (`plot_format`), all or nothing."""
    check_plot_target(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5))
    edges = np.linspace(float(scores.min()), float(scores.max()), 61).tolist()
    axes.hist(scores[~labels], edges, alpha=0.6, label=f"not duplicate ({int((~labels).sum())})")
    axes.hist(scores[labels], edges, alpha=0.6, label=f"duplicate ({int(labels.sum())})")
    axes.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f}")
    axes.set_xlabel("cosine score")
    axes.set_ylabel("pairs")
    axes.legend()
    picture = io.BytesIO()
    try:
        figure.savefig(picture, format=plot_format(path), dpi=120, bbox_inches="tight")
    finally:
        plt.close(figure)
    try:
        with writing(path) as handle:  # all or nothing; /dev/stdout in place, never truncated
            handle.write(picture.getvalue())
    except OSError as exc:
        raise DupfindError(f"{path}: cannot write ({exc.strerror or exc})") from exc
