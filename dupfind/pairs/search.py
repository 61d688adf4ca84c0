"""Exact nearest-neighbour search of queries against a corpus of embeddings, block by block."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.pairs.mining import DEFAULT_TOP_K, MinedPairs, check_threshold, check_top_k
from dupfind.thresholds import Rule
from dupfind.vectors.encoding import Embeddings

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_SEARCH_K = 5
_BLOCK_BYTES = 64 << 20


@dataclass(frozen=True)
class Neighbours:
    """The best corpus rows of each query, best first: `rows[q, r]` has cosine `scores[q, r]`.

    Re-ranked neighbours (`Reranker.rerank_neighbours`) carry the re-rank scores, and are best first by them.
    Neighbours found by a pipeline (`dupfind.pairs.corpus.search_corpus`) carry the `rule` that tells which hits
    are duplicates.
    """

    rows: NDArray[np.int64]
    scores: NDArray[np.float32]
    rerank_scores: NDArray[np.float32] | None = None
    rule: Rule | None = None

    def duplicates(self) -> NDArray[np.bool_]:
        """Which hits are duplicates by the rule (none without one)."""
        if self.rule is None:
            return np.zeros(self.rows.shape, dtype=bool)
        above = self.scores >= self.rule.cosine
        if self.rule.rerank is None:
            return above
        if self.rerank_scores is None:
            return np.zeros(self.rows.shape, dtype=bool)
        return above & (self.rerank_scores >= self.rule.rerank)

    def to_frame(
        self,
        ids: Sequence[object],
        texts: Sequence[str],
        queries: tuple[Sequence[object], Sequence[str]] | None = None,
    ) -> pd.DataFrame:
        """One line per hit: `[query_id, query,] rank, score, [rerank_score,] duplicate, id, question` (`ids`,
        `texts`: the corpus's; `queries`: the queries' ids and texts, shown when given); `duplicate` by the rule."""
        import pandas as pd

        from dupfind.io.questions import id_column

        flat_rows, flat_scores = self.rows.ravel(), self.scores.ravel().astype(np.float64)
        columns: dict[str, object] = {}
        if queries is not None:
            query = np.repeat(np.arange(self.rows.shape[0]), self.rows.shape[1])
            columns["query_id"] = id_column([queries[0][q] for q in query.tolist()])
            columns["query"] = [queries[1][q] for q in query.tolist()]
        columns["rank"] = np.tile(np.arange(1, self.rows.shape[1] + 1), self.rows.shape[0])
        columns["score"] = np.round(flat_scores, 6)
        if self.rerank_scores is not None:
            columns["rerank_score"] = np.round(self.rerank_scores.ravel().astype(np.float64), 6)
        columns["duplicate"] = self.duplicates().ravel()
        columns["id"] = id_column([ids[row] for row in flat_rows.tolist()])
        columns["question"] = [texts[row] for row in flat_rows.tolist()]
        return pd.DataFrame(columns)


def nearest(
    queries: Embeddings, corpus: Embeddings, k: int = DEFAULT_SEARCH_K, exclude: NDArray[np.int64] | None = None
) -> Neighbours:
    """The `k` corpus rows with the highest cosine to each L2-normalised query (lower row first on ties).

    `exclude[q]`, when given, is a corpus row that query `q` must not retrieve (itself, when the queries are
    corpus rows). Queries are scored block by block, so memory stays bounded by one block of scores.
    """
    check_top_k(k)
    if len(corpus) and len(queries) and queries.shape[1] != corpus.shape[1]:
        raise DupfindError(f"queries have {queries.shape[1]} dimensions but the corpus has {corpus.shape[1]}")
    k = max(0, min(k, len(corpus) - (exclude is not None)))
    rows = np.empty((len(queries), k), dtype=np.int64)
    scores = np.empty((len(queries), k), dtype=np.float32)
    block = int(max(1, min(4096, _BLOCK_BYTES // (4 * max(len(corpus), 1)))))
    for start in range(0, len(queries) if k else 0, block):
        stop = min(start + block, len(queries))
        block_scores = queries[start:stop] @ corpus.T
        if exclude is not None:
            block_scores[np.arange(stop - start), exclude[start:stop]] = -np.inf
        best = np.argpartition(-block_scores, k - 1, axis=1)[:, :k] if k < len(corpus) else _all(block_scores)
        best_scores = np.take_along_axis(block_scores, best, axis=1)
        order = np.lexsort((best, -best_scores), axis=1)
        rows[start:stop] = np.take_along_axis(best, order, axis=1)
        scores[start:stop] = np.take_along_axis(best_scores, order, axis=1)
    return Neighbours(rows, scores)


def _all(scores: NDArray[np.float32]) -> NDArray[np.int64]:
    return np.broadcast_to(np.arange(scores.shape[1], dtype=np.int64), scores.shape)


def mine_against(queries: Embeddings, corpus: Embeddings, threshold: float, top_k: int = DEFAULT_TOP_K) -> MinedPairs:
    """Pairs of a query and a corpus row with cosine ≥ threshold, each query keeping its best `top_k`.

    Unlike pairs within one set, `left` indexes the queries and `right` the corpus.
    """
    check_threshold(threshold)
    check_top_k(top_k)
    found = nearest(queries, corpus, top_k + 1)
    above = found.scores >= threshold
    truncated = int(above[:, top_k].sum()) if found.scores.shape[1] > top_k else 0
    above[:, top_k:] = False
    left, rank = np.nonzero(above)
    return MinedPairs(left, found.rows[left, rank], found.scores[left, rank], truncated).sorted()
