"""Removing duplicates: one question kept per group, every other member mapped to it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.pairs.clustering import Clusters
from dupfind.vectors.encoding import Embeddings, cosines

if TYPE_CHECKING:
    import pandas as pd

KEEP_POLICIES = ("first", "longest", "central")


@dataclass(frozen=True)
class Deduplicated:
    """Which rows stay (`kept`, in row order) and, for each removed row, the kept row standing for it."""

    kept: NDArray[np.int64]
    removed: NDArray[np.int64]
    kept_for: NDArray[np.int64]
    scores: NDArray[np.float32]

    def map_frame(self, ids: Sequence[object], texts: Sequence[str]) -> pd.DataFrame:
        """Each removed row with the kept row standing for it: `removed_id, kept_id, score, …`."""
        import pandas as pd

        from dupfind.io.questions import id_column

        return pd.DataFrame(
            {
                "removed_id": id_column([ids[i] for i in self.removed]),
                "kept_id": id_column([ids[i] for i in self.kept_for]),
                "score": np.round(self.scores.astype(np.float64), 6),
                "removed_question": [texts[i] for i in self.removed],
                "kept_question": [texts[i] for i in self.kept_for],
            }
        )


def check_keep(keep: str) -> None:
    """Reject unknown policies for the row kept."""
    if keep not in KEEP_POLICIES:
        raise DupfindError(f"unknown keep policy '{keep}' (choose from {', '.join(KEEP_POLICIES)})")


def choose_kept(clusters: Clusters, texts: Sequence[str], keep: str = "first") -> NDArray[np.int64]:
    """The row kept in each group: its first row, its longest text (first on ties), or its representative."""
    check_keep(keep)
    if keep == "central":
        return clusters.representatives
    rows = np.arange(len(clusters.labels))
    if not len(rows):
        return rows
    length = np.array([len(text) for text in texts]) if keep == "longest" else np.zeros(len(rows), dtype=np.int64)
    order = np.lexsort((rows, -length, clusters.labels))
    starts = np.r_[0, np.flatnonzero(np.diff(clusters.labels[order])) + 1]
    return order[starts]


def deduplicate(clusters: Clusters, texts: Sequence[str], embeddings: Embeddings, keep: str = "first") -> Deduplicated:
    """Keep one row per group (see `choose_kept`); each removed row maps to its group's kept row with their cosine."""
    chosen = choose_kept(clusters, texts, keep)
    target = chosen[clusters.labels]
    is_kept = target == np.arange(len(target))
    removed = np.flatnonzero(~is_kept)
    kept_for = target[removed]
    scores = cosines(embeddings[removed], embeddings[kept_for])
    return Deduplicated(np.flatnonzero(is_kept), removed, kept_for, scores)
