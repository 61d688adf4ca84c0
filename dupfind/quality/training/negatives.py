"""A hard negative for each duplicate pair: a labeled non-duplicate, else a near neighbour outside its cluster."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dupfind.quality.training.holdout import encode
from dupfind.quality.training.splits import duplicate_clusters

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

HARD_NEGATIVE_CANDIDATES = 30  # nearest neighbours of each anchor considered as its negative
HARD_NEGATIVE_CHOICES = 10  # the negative is drawn from this many of the nearest eligible ones
HARD_NEGATIVE_MARGIN = 0.05  # negatives score at most (1 - margin) x the positive: closer may be unlabeled duplicates
# (labeled pairs, anchors, their positives, the model, seed, progress) -> a negative for each anchor
NegativeMiner = Callable[[pd.DataFrame, list[str], list[str], "SentenceTransformer", int, bool], list[str]]


def hard_negatives(
    pairs: pd.DataFrame,
    anchors: list[str],
    positives: list[str],
    model: SentenceTransformer,
    seed: int,
    progress: bool = False,
) -> list[str]:
    """A negative for each (anchor, positive): a question labeled not a duplicate of the anchor when there is one,
    else one of the anchor's nearest questions (by `model`) among all of `pairs`, outside its cluster of duplicates
    and scoring clearly below the positive; an anchor with no such neighbour gets a random question.
    """
    from dupfind.quality.evaluation.retrieval import top_neighbours
    from dupfind.vectors.encoding import cosines

    texts = sorted(set(pairs["sentence1"]) | set(pairs["sentence2"]))
    row = {text: i for i, text in enumerate(texts)}
    duplicates = pairs[pairs["label"] == 1]
    cluster = duplicate_clusters(texts, duplicates["sentence1"].tolist(), duplicates["sentence2"].tolist())
    labeled: dict[str, list[str]] = {}
    for a, b in pairs.loc[pairs["label"] == 0, ["sentence1", "sentence2"]].itertuples(index=False):
        labeled.setdefault(a, []).append(b)
        labeled.setdefault(b, []).append(a)

    embeddings = encode(model, texts, progress)
    anchor_rows = np.array([row[text] for text in anchors])
    positive_scores = cosines(embeddings[anchor_rows], embeddings[[row[text] for text in positives]])
    unique_anchors, inverse = np.unique(anchor_rows, return_inverse=True)
    neighbours, scores = top_neighbours(embeddings, HARD_NEGATIVE_CANDIDATES, unique_anchors)
    rng = np.random.default_rng(seed)
    negatives = []
    for i, anchor in enumerate(anchors):
        if anchor in labeled:
            negatives.append(labeled[anchor][rng.integers(len(labeled[anchor]))])
            continue
        found, found_scores = neighbours[inverse[i]], scores[inverse[i]]
        eligible = found[
            (cluster[found] != cluster[anchor_rows[i]])
            & (found_scores <= (1 - HARD_NEGATIVE_MARGIN) * positive_scores[i])
        ][:HARD_NEGATIVE_CHOICES]
        pool = eligible if len(eligible) else np.arange(len(texts))
        negatives.append(texts[int(pool[rng.integers(len(pool))])])
    return negatives
