"""Hard negatives: near neighbours of a question outside its cluster of duplicates, scoring clearly below its
positive (closer ones may be unlabeled duplicates). One miner, `near_misses`, serves both trainers: the
bi-encoder's (`hard_negatives`, a negative for each duplicate pair) and the re-ranker's (`cluster_negatives`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from dupfind.quality.training.holdout import encode
from dupfind.quality.training.splits import duplicate_clusters

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from dupfind.vectors.embedder import Embedder
    from dupfind.vectors.encoding import Embeddings

HARD_NEGATIVE_CANDIDATES = 30  # nearest neighbours of each anchor considered as its negative
HARD_NEGATIVE_CHOICES = 10  # the negative is drawn from this many of the nearest eligible ones
HARD_NEGATIVE_MARGIN = 0.05  # negatives score at most (1 - margin) x the positive: closer may be unlabeled duplicates
# (labeled pairs, anchors, their positives, the model, seed, progress) -> a negative for each anchor
NegativeMiner = Callable[[pd.DataFrame, list[str], list[str], "SentenceTransformer", int, bool], list[str]]


def near_misses(
    embeddings: Embeddings,
    clusters: NDArray[np.int64],
    anchors: NDArray[np.int64],
    depth: int,
    positive_scores: NDArray[np.float32] | None = None,
) -> list[NDArray[np.int64]]:
    """For each anchor row, the rows eligible as its hard negative, nearest first: among its `depth` nearest, those
    outside its cluster scoring at most (1 - margin) x its positive's score (`positive_scores`; None: its nearest
    cluster-mate's among them, 1.0 when there is none), at most `HARD_NEGATIVE_CHOICES` of them."""
    from dupfind.quality.evaluation.retrieval import top_neighbours

    unique_anchors, inverse = np.unique(anchors, return_inverse=True)
    neighbours, scores = top_neighbours(embeddings, depth, unique_anchors)
    eligible = []
    for i, anchor in enumerate(anchors.tolist()):
        found, found_scores = neighbours[inverse[i]], scores[inverse[i]]
        inside = clusters[found] == clusters[anchor]
        if positive_scores is not None:
            positive = positive_scores[i]
        else:
            positive = float(found_scores[inside].max()) if inside.any() else 1.0
        eligible.append(
            found[~inside & (found_scores <= (1 - HARD_NEGATIVE_MARGIN) * positive)][:HARD_NEGATIVE_CHOICES]
        )
    return eligible


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
    eligible = near_misses(embeddings, cluster, anchor_rows, HARD_NEGATIVE_CANDIDATES, positive_scores)
    rng = np.random.default_rng(seed)
    negatives = []
    for anchor, found in zip(anchors, eligible, strict=True):
        if anchor in labeled:
            negatives.append(labeled[anchor][rng.integers(len(labeled[anchor]))])
            continue
        pool = found if len(found) else np.arange(len(texts))
        negatives.append(texts[int(pool[rng.integers(len(pool))])])
    return negatives


def cluster_negatives(
    questions: pd.DataFrame, embedder: Embedder, share: float, rng: np.random.Generator
) -> pd.DataFrame:
    """For a random `share` of the questions (`question, cluster`) of clusters of two or more: a near neighbour
    by the bi-encoder outside its cluster, scoring clearly below its best partner in the cluster (none when no
    neighbour is eligible), as rows `sentence1, sentence2, label` (0)."""
    texts = questions["question"].tolist()
    clusters = pd.factorize(questions["cluster"])[0].astype(np.int64)
    embeddings = embedder.embed(texts)
    sizes = np.bincount(clusters)
    clustered = np.flatnonzero(sizes[clusters] >= 2)
    anchors = np.sort(rng.choice(clustered, size=round(share * len(clustered)), replace=False))
    eligible = near_misses(embeddings, clusters, anchors, HARD_NEGATIVE_CHOICES + int(sizes.max()))
    rows = [
        (texts[anchor], texts[int(found[rng.integers(len(found))])], 0)
        for anchor, found in zip(anchors.tolist(), eligible, strict=True)
        if len(found)
    ]
    return pd.DataFrame(rows, columns=["sentence1", "sentence2", "label"])
