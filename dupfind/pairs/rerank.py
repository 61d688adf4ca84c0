"""Re-ranking: a cross-encoder reads both questions of each candidate pair and decides, after the bi-encoder proposed.

The bi-encoder proposes candidates at a recall-oriented cosine (the `Rule` of `dupfind.thresholds`); the re-rank
score, a probability in [0, 1] that fuses the candidate's cosine with the cross-encoder's score (the re-ranker's
`Fusion`), decides. Cross-encoder scores are computed in batches of pairs sorted by length and cached on disk like
embeddings (keyed by both texts and the model)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from dupfind.errors import DupfindError
from dupfind.pairs.mining import MinedPairs
from dupfind.pairs.search import Neighbours
from dupfind.thresholds import IDENTITY, Fusion, Rule
from dupfind.vectors.cache import EmbeddingCache
from dupfind.vectors.encoding import DEFAULT_BATCH_SIZE, Progress, check_batch_size
from dupfind.vectors.pair_scorer import PairScorer, Scores, pair_keys


@dataclass(frozen=True)
class Reranker:
    """Scores question pairs with a cross-encoder: each distinct pair once, read from the cache when it is there.

    Pairs are scored in batches sorted by token count (little padding); `progress(scored, total)` is called after
    each batch with the number of pairs it scored. `fusion` (the re-ranker's settings) makes the re-rank score of
    the cross-encoder's and the pair's cosine. `score_all`, when given, scores all the distinct pairs not in the
    cache at once instead, elsewhere (on a Ray cluster: `dupfind.ray.rerank.ray_reranker`).
    """

    scorer: PairScorer
    cache: EmbeddingCache | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    progress: Progress | None = None
    fusion: Fusion = IDENTITY
    score_all: Callable[[list[str], list[str]], Scores] | None = None

    def __post_init__(self) -> None:
        check_batch_size(self.batch_size)

    def with_progress(self, progress: Progress | None) -> Reranker:
        return replace(self, progress=progress)

    def score(self, first: Sequence[str], second: Sequence[str], cosines: Scores) -> Scores:
        """The re-rank score of each pair `(first[i], second[i])` whose bi-encoder cosine is `cosines[i]`, in order."""
        if not len(first) == len(second) == len(cosines):
            raise ValueError("first, second and cosines must be as long")
        return self.fusion.score(cosines, self.cross_scores(first, second))

    def cross_scores(self, first: Sequence[str], second: Sequence[str]) -> Scores:
        """The cross-encoder's own score of each pair `(first[i], second[i])`, in order."""
        if not first:
            return np.zeros(0, dtype=np.float32)
        keys = pair_keys(first, second)
        out = np.empty(len(first), dtype=np.float32)
        found = np.zeros(len(first), dtype=bool)
        if self.cache is not None:
            cached, found = self.cache.lookup(self.scorer.fingerprint, keys)
            if cached is not None:
                out[found] = cached[found, 0]
        missing = np.flatnonzero(~found)
        _, distinct, inverse = np.unique(keys[missing], axis=0, return_index=True, return_inverse=True)
        todo = missing[distinct]
        fresh = self._score([first[i] for i in todo.tolist()], [second[i] for i in todo.tolist()])
        out[missing] = fresh[inverse.ravel()]
        if self.cache is not None and len(todo):
            try:
                self.cache.store(self.scorer.fingerprint, keys[todo], fresh[:, None])
            except OSError as exc:
                warnings.warn(f"re-rank cache not written ({exc})", stacklevel=2)
        return out

    def rerank(self, pairs: MinedPairs, texts: Sequence[str], threshold: float) -> MinedPairs:
        """The candidate `pairs` (rows of `texts`) whose re-rank score is >= `threshold`, with that score, best
        first by it."""
        if not 0.0 <= threshold <= 1.0:
            raise DupfindError(f"a re-rank threshold is a probability, between 0 and 1, got {threshold}")
        first, second = [texts[row] for row in pairs.left.tolist()], [texts[row] for row in pairs.right.tolist()]
        scores = self.score(first, second, pairs.scores)
        kept = replace(pairs, rerank_scores=scores).take(np.flatnonzero(scores >= threshold))
        return kept.sorted()

    def decide(self, pairs: MinedPairs, texts: Sequence[str], rule: Rule) -> MinedPairs:
        """The candidate `pairs` that pass a re-ranking `rule`, carrying it and how many candidates there were."""
        if rule.rerank is None:
            raise DupfindError(f"pairs are duplicates by {rule.describe()}: there is nothing to re-rank")
        return replace(self.rerank(pairs, texts, rule.rerank), rule=rule, candidates=len(pairs))

    def rerank_neighbours(self, found: Neighbours, queries: Sequence[str], corpus: Sequence[str]) -> Neighbours:
        """Search hits (`found.rows[q]` of `corpus` for `queries[q]`) with their re-rank scores, best first by
        them within each query (ties: cosine order)."""
        rows = found.rows
        first = [queries[q] for q in range(rows.shape[0]) for _ in range(rows.shape[1])]
        second = [corpus[row] for row in rows.ravel().tolist()]
        scores = self.score(first, second, found.scores.ravel()).reshape(rows.shape)
        order = np.argsort(-scores, axis=1, kind="stable")
        return Neighbours(
            np.take_along_axis(rows, order, 1),
            np.take_along_axis(found.scores, order, 1),
            np.take_along_axis(scores, order, 1),
        )

    def _score(self, first: list[str], second: list[str]) -> Scores:
        out = np.empty(len(first), dtype=np.float32)
        if not first:
            return out
        if self.score_all is not None:
            return self.score_all(first, second)
        tokens = np.asarray(self.scorer.count_tokens(first, second), dtype=np.int64)
        order = np.argsort(tokens, kind="stable")
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size].tolist()
            out[batch] = self.scorer.score_batch([first[i] for i in batch], [second[i] for i in batch])
            if self.progress is not None:
                self.progress(len(batch), len(first))
        return out
