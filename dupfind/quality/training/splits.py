"""The labeled pairs to train on, a held-out split that shares no question with them, and clusters of duplicates."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.quality.evaluation.labeled import PAIR_COLUMNS, LabeledPairs

DEFAULT_HOLDOUT = 0.1
MAX_HOLDOUT_PAIRS = 2000


def read_pairs(source: str, columns: tuple[str, str, str] = PAIR_COLUMNS, fmt: str | None = None) -> pd.DataFrame:
    """Read labeled pairs as columns `sentence1, sentence2, label` (0/1); rows with a blank question are dropped."""
    from dupfind.io.read import read_table
    from dupfind.quality.evaluation.labeled import pairs_from_frame

    return training_pairs(pairs_from_frame(source, read_table(source, fmt)[0], columns))


def training_pairs(pairs: LabeledPairs) -> pd.DataFrame:
    """Labeled pairs as the trainers take them: columns `sentence1, sentence2, label` (0/1)."""
    return pd.DataFrame({"sentence1": pairs.first, "sentence2": pairs.second, "label": pairs.labels.astype(int)})


def duplicate_clusters(texts: list[str], left: list[str], right: list[str]) -> NDArray[np.int64]:
    """The cluster of each of `texts`: connected components of the pairs `(left[i], right[i])` (all among
    `texts`), found with scipy; a text in no pair is alone in its cluster."""
    from dupfind.pairs.clustering import components
    from dupfind.pairs.mining import MinedPairs

    position = {text: row for row, text in enumerate(texts)}
    first = np.array([position[text] for text in left], dtype=np.int64)
    second = np.array([position[text] for text in right], dtype=np.int64)
    return components(len(texts), MinedPairs(first, second, np.ones(len(first), dtype=np.float32)))


def split_holdout(pairs: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Carve a held-out split sharing no question with the rest: whole connected components of the pair graph."""
    if not 0 < fraction < 1:
        raise DupfindError(f"the held-out share must be between 0 and 1, got {fraction}")
    texts = sorted(set(pairs["sentence1"]) | set(pairs["sentence2"]))
    labels = duplicate_clusters(texts, pairs["sentence1"].tolist(), pairs["sentence2"].tolist())
    cluster = dict(zip(texts, labels.tolist(), strict=True))
    group = pairs["sentence1"].map(cluster)
    sizes = group.value_counts(sort=False)
    order = np.random.default_rng(seed).permutation(len(sizes))
    wanted = min(max(1, round(fraction * len(pairs))), MAX_HOLDOUT_PAIRS)
    cumulative = sizes.iloc[order].cumsum()
    held_groups = set(cumulative.index[: int(np.searchsorted(cumulative.to_numpy(), wanted)) + 1])
    held = group.isin(held_groups)
    train, holdout = pairs[~held].reset_index(drop=True), pairs[held].reset_index(drop=True)
    for name, part in (("training", train), ("held-out", holdout)):
        if part["label"].nunique() < 2:
            raise DupfindError(
                f"too few pairs: the {name} split ({len(part)} pairs) needs duplicates and non-duplicates"
            )
    return train, holdout
