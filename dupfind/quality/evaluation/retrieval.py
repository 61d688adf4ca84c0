"""Retrieval over gold clusters: each question of a cluster of two or more retrieves the others."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.pairs.search import nearest
from dupfind.vectors.encoding import Embeddings

RETRIEVAL_AT_K = (1, 3, 5, 10)
_RETRIEVAL_DEPTH = 100


@dataclass(frozen=True)
class RetrievalReport:
    """Each question of a cluster of two or more retrieving the others; metrics named as sentence-transformers does."""

    questions: int
    queries: int
    metrics: dict[str, float]


def top_neighbours(
    embeddings: Embeddings, k: int, rows: NDArray[np.int64] | None = None
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """The `k` best other rows of each of `rows` (default all), best first (ties: lower row first).

    Scored block by block against all rows (never an n×n matrix); a row never retrieves itself.
    """
    queries = np.arange(len(embeddings)) if rows is None else rows
    found = nearest(embeddings if rows is None else embeddings[rows], embeddings, k, exclude=queries)
    return found.rows, found.scores


def evaluate_retrieval(embeddings: Embeddings, clusters: NDArray[np.int64]) -> RetrievalReport:
    """Each question of a cluster of two or more queries all others; as `InformationRetrievalEvaluator` (cosine)."""
    sizes = np.bincount(clusters)
    queries = np.flatnonzero(sizes[clusters] >= 2)
    if len(queries) == 0:
        raise DupfindError("no cluster holds two or more questions, so there is nothing to retrieve")
    hits, _ = top_neighbours(embeddings, _RETRIEVAL_DEPTH, queries)
    relevant = clusters[hits] == clusters[queries][:, None]
    wanted = sizes[clusters[queries]] - 1
    metrics: dict[str, float] = {}
    for k in RETRIEVAL_AT_K:
        metrics[f"accuracy@{k}"] = float(np.mean(relevant[:, :k].any(axis=1)))
    for k in RETRIEVAL_AT_K:
        metrics[f"precision@{k}"] = float(np.mean(relevant[:, :k].sum(axis=1) / k))
    for k in RETRIEVAL_AT_K:
        metrics[f"recall@{k}"] = float(np.mean(relevant[:, :k].sum(axis=1) / wanted))
    top10 = relevant[:, :10]
    discounts = 1 / np.log2(np.arange(2, 12))
    ideal = np.cumsum(discounts)[np.minimum(wanted, 10) - 1]
    metrics["ndcg@10"] = float(np.mean(top10 @ discounts[: top10.shape[1]] / ideal))
    first = np.argmax(top10, axis=1)
    metrics["mrr@10"] = float(np.mean(np.where(top10.any(axis=1), 1 / (first + 1), 0.0)))
    precision_at = np.cumsum(relevant, axis=1) / np.arange(1, relevant.shape[1] + 1)
    average = np.sum(precision_at * relevant, axis=1) / np.minimum(wanted, _RETRIEVAL_DEPTH)
    metrics[f"map@{_RETRIEVAL_DEPTH}"] = float(np.mean(average))
    return RetrievalReport(len(clusters), len(queries), metrics)
