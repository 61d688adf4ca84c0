"""Grouping duplicates: connected components or centred communities over the mined pairs."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.pairs.identical import unique_texts
from dupfind.pairs.mining import MinedPairs, decide, mine_embeddings
from dupfind.thresholds import Rule
from dupfind.vectors.encoding import Embeddings

if TYPE_CHECKING:
    import pandas as pd

    from dupfind.io.questions import Questions
    from dupfind.pairs.rerank import Reranker
    from dupfind.vectors.embedder import Embedder

METHODS = ("communities", "components")
DEFAULT_METHOD = "communities"
DEFAULT_CLUSTER_TOP_K = 50
CLUSTER_COLUMNS = ("cluster_id", "cluster_size", "representative")  # what `Clusters.columns` adds to the input


@dataclass(frozen=True)
class Clusters:
    """A partition of rows into groups of duplicates (a question alone is a group of one).

    `labels[i]` is row i's group, numbered from 0 in the order of each group's first row;
    `representatives[g]` is the row standing for group g; `rule` says which pairs were duplicates.
    """

    labels: NDArray[np.int64]
    representatives: NDArray[np.int64]
    rule: Rule | None = None

    @property
    def sizes(self) -> NDArray[np.int64]:
        """The number of rows in each group."""
        return np.bincount(self.labels, minlength=len(self.representatives)).astype(np.int64)

    def __len__(self) -> int:
        return len(self.representatives)

    def describe(self, method: str) -> str:
        """A one-line summary: rows, groups, how they were made (the rule, e.g. "cosine ≥ 0.8", and the method),
        groups of duplicates and the largest."""
        sizes = self.sizes
        largest = int(sizes.max()) if len(sizes) else 0
        rule = "" if self.rule is None else f"{self.rule.describe()}, "
        return (
            f"{len(self.labels)} questions in {len(self)} groups ({rule}{method}): "
            f"{int((sizes > 1).sum())} groups of duplicates, the largest of {largest}"
        )

    def columns(self, questions: Questions) -> pd.DataFrame:
        """What the groups add to the input table, a row for each of its rows: `cluster_id` (from 1),
        `cluster_size` and `representative` (an id); rows without a question (blank) get nulls."""
        import pandas as pd

        check_columns_free(questions)
        count = len(questions.frame)
        cluster_id = pd.array([pd.NA] * count, dtype="Int64")
        cluster_size = pd.array([pd.NA] * count, dtype="Int64")
        representative: list[object] = [None] * count
        cluster_id[questions.rows] = self.labels + 1
        cluster_size[questions.rows] = self.sizes[self.labels]
        for row, label in zip(questions.rows.tolist(), self.labels.tolist(), strict=True):
            representative[row] = questions.ids[int(self.representatives[label])]
        index = questions.frame.index
        columns = {
            "cluster_id": pd.Series(cluster_id, index=index),
            "cluster_size": pd.Series(cluster_size, index=index),
            "representative": pd.Series(representative, index=index, dtype=object),
        }
        return pd.DataFrame(columns)

    def to_frame(self, questions: Questions) -> pd.DataFrame:
        """The whole input table with the `columns` of the groups after its own."""
        frame = questions.frame.copy()
        for name, column in self.columns(questions).items():
            frame[name] = column.array
        return frame


def check_columns_free(questions: Questions) -> None:
    """Refuse a table that has a column of the name of one that `Clusters.columns` adds: it would be replaced."""
    taken = [str(name) for name in questions.frame.columns if name in CLUSTER_COLUMNS]
    if taken:
        raise DupfindError(
            f"{questions.source}: already has a column {taken[0]!r}, which the groups would replace "
            f"(rename it: {', '.join(CLUSTER_COLUMNS)} are added)"
        )


def check_method(method: str) -> None:
    """Reject unknown clustering methods."""
    if method not in METHODS:
        raise DupfindError(f"unknown clustering method '{method}' (choose from {', '.join(METHODS)})")


def components(n: int, pairs: MinedPairs) -> NDArray[np.int64]:
    """The connected component of each of `n` rows in the graph of the pairs (duplicates of duplicates join)."""
    from scipy.sparse.csgraph import connected_components

    _, labels = connected_components(_adjacency(n, pairs), directed=False)
    return np.asarray(labels, dtype=np.int64)


def communities(n: int, pairs: MinedPairs) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Greedy centred communities: labels of the `n` rows and the centre of each community.

    The free row with the most free neighbours becomes a centre and takes all its free
    neighbours, so every member is paired with its centre (no chains A~B~C); repeat.
    """
    adjacency = _adjacency(n, pairs)
    starts, neighbours = adjacency.indptr, adjacency.indices
    free = np.diff(starts).astype(np.int64)
    labels = np.full(n, -1, dtype=np.int64)
    centres: list[int] = []
    heap = [(-int(count), row) for row, count in enumerate(free)]
    heapq.heapify(heap)
    while heap:
        count, row = heapq.heappop(heap)
        if labels[row] >= 0:
            continue
        if -count != free[row]:
            heapq.heappush(heap, (-int(free[row]), row))
            continue
        around = neighbours[starts[row] : starts[row + 1]]
        members = np.r_[row, around[labels[around] < 0]]
        labels[members] = len(centres)
        centres.append(row)
        for member in members.tolist():
            np.subtract.at(free, neighbours[starts[member] : starts[member + 1]], 1)
    return labels, np.asarray(centres, dtype=np.int64)


def _adjacency(n: int, pairs: MinedPairs) -> Any:
    from scipy.sparse import csr_matrix

    rows = np.r_[pairs.left, pairs.right]
    cols = np.r_[pairs.right, pairs.left]
    return csr_matrix((np.r_[pairs.scores, pairs.scores], (rows, cols)), shape=(n, n))


def cluster_pairs(embeddings: Embeddings, pairs: MinedPairs, method: str = DEFAULT_METHOD) -> Clusters:
    """Group rows linked by the pairs; a community's representative is its centre, a component's the
    member most similar on average to the others."""
    check_method(method)
    n = len(embeddings)
    if method == "communities":
        labels, centres = communities(n, pairs)
    else:
        labels = components(n, pairs)
        centres = _most_central(embeddings, labels)
    return _renumber(labels, centres)


def cluster_embeddings(
    embeddings: Embeddings, threshold: float, method: str = DEFAULT_METHOD, top_k: int = DEFAULT_CLUSTER_TOP_K
) -> Clusters:
    """Mine the pairs with cosine ≥ threshold (each row keeping its best `top_k`) and group them."""
    check_method(method)
    return replace(
        cluster_pairs(embeddings, mine_embeddings(embeddings, threshold, top_k), method), rule=Rule(threshold)
    )


def cluster_texts(
    embedder: Embedder,
    texts: Sequence[str],
    rule: Rule | float,
    method: str = DEFAULT_METHOD,
    top_k: int = DEFAULT_CLUSTER_TOP_K,
    reranker: Reranker | None = None,
) -> tuple[Clusters, Embeddings]:
    """Group texts into duplicates by a `Rule` (a float: a cosine threshold alone); identical texts (up to case
    and whitespace) are embedded once and always share a group. Returns the groups and the embedding of every
    text. When the rule re-ranks, `reranker` decides among the pairs mined at its cosine."""
    rule = Rule.of(rule)
    check_method(method)
    first, inverse = unique_texts(texts)
    distinct = [texts[i] for i in first]
    embeddings = embedder.embed(distinct)
    pairs = decide(mine_embeddings(embeddings, rule.cosine, top_k), distinct, rule, reranker)
    clusters = cluster_pairs(embeddings, pairs, method)
    rows = Clusters(clusters.labels[inverse], first[clusters.representatives], rule)
    return rows, embeddings[inverse]


def _most_central(embeddings: Embeddings, labels: NDArray[np.int64]) -> NDArray[np.int64]:
    """For each group, the member with the highest mean cosine to its group (first row on ties)."""
    count = int(labels.max()) + 1 if len(labels) else 0
    sums = np.zeros((count, embeddings.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, embeddings)
    affinity = np.einsum("ij,ij->i", embeddings, sums[labels])
    order = np.lexsort((np.arange(len(labels)), -affinity, labels))
    return order[np.r_[0, np.flatnonzero(np.diff(labels[order])) + 1]] if len(order) else order


def _renumber(labels: NDArray[np.int64], centres: NDArray[np.int64]) -> Clusters:
    """Number the groups in the order of their first row."""
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first, kind="stable")
    new = np.empty_like(order)
    new[order] = np.arange(len(order))
    return Clusters(new[labels], centres[order])
