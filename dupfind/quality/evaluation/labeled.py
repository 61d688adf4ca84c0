"""Reading labeled data: question pairs with a duplicate label, and questions with a gold cluster."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from dupfind.errors import DupfindError

if TYPE_CHECKING:
    import pandas as pd

Labels = NDArray[np.bool_]
PAIR_COLUMNS = ("question1", "question2", "is_duplicate")
CLUSTER_COLUMN = "cluster"
_LABELS = {"0": False, "1": True, "0.0": False, "1.0": True, "false": False, "true": True}


@dataclass(frozen=True)
class LabeledPairs:
    """Question pairs with a duplicate label each; `skipped_blank` rows had a blank question."""

    first: list[str]
    second: list[str]
    labels: Labels
    skipped_blank: int = 0


@dataclass(frozen=True)
class GoldClusters:
    """Questions with the cluster each belongs to (as codes 0..c-1); duplicates share a cluster."""

    texts: list[str]
    clusters: NDArray[np.int64]
    skipped_blank: int = 0


def pairs_from_frame(source: str, frame: pd.DataFrame, columns: Sequence[str] = PAIR_COLUMNS) -> LabeledPairs:
    """The labeled pairs of a table with two question columns and a 0/1 label column; blank pairs are skipped."""
    _require_columns(source, frame, columns)
    first_col, second_col, label_col = columns
    first, second = _texts(frame[first_col]), _texts(frame[second_col])
    keep = [i for i in range(len(frame)) if first[i].strip() and second[i].strip()]
    if not keep:
        raise DupfindError(f"{source}: no pair has two non-blank questions")
    labels = _labels(source, frame[label_col].tolist(), label_col, keep)
    if labels.all() or not labels.any():
        raise DupfindError(f"{source}: column '{label_col}' must hold both duplicates (1) and non-duplicates (0)")
    return LabeledPairs([first[i] for i in keep], [second[i] for i in keep], labels, len(frame) - len(keep))


def clusters_from_frame(
    source: str, frame: pd.DataFrame, text_col: str | None = None, cluster_col: str = CLUSTER_COLUMN
) -> GoldClusters:
    """The questions of a table with a cluster column; blank questions are skipped."""
    _require_columns(source, frame, [cluster_col])
    from dupfind.io.questions import pick_text_column

    texts = _texts(frame[pick_text_column(source, frame, text_col)])
    keep = [i for i, text in enumerate(texts) if text.strip()]
    if not keep:
        raise DupfindError(f"{source}: no non-blank questions")
    clusters = _texts(frame[cluster_col].iloc[keep])
    blank = next((keep[i] for i, cluster in enumerate(clusters) if not cluster.strip()), None)
    if blank is not None:
        raise DupfindError(f"{source}: row {blank + 1} has no '{cluster_col}'")
    import pandas as pd  # imported here: the CLI starts faster without pandas

    codes = pd.factorize(pd.Series(clusters))[0].astype(np.int64)
    if np.bincount(codes).max() < 2:
        raise DupfindError(f"{source}: no cluster holds two or more questions, so there are no duplicates to find")
    return GoldClusters([texts[i] for i in keep], codes, len(frame) - len(keep))


def _require_columns(source: str, frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        names = ", ".join(f"'{column}'" for column in missing)
        present = ", ".join(str(column) for column in frame.columns)
        raise DupfindError(f"{source}: no column {names} (columns: {present})")


def _texts(values: pd.Series) -> list[str]:
    return ["" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value) for value in values]


def _labels(source: str, values: list[object], column: str, rows: list[int]) -> Labels:
    labels = np.zeros(len(rows), dtype=np.bool_)
    for position, row in enumerate(rows):
        label = _LABELS.get(str(values[row]).strip().lower())
        if label is None:
            raise DupfindError(f"{source}: column '{column}' must hold 0 or 1; row {row + 1} has '{values[row]}'")
        labels[position] = label
    return labels
