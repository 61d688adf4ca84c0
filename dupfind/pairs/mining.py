"""Mining duplicate pairs: exact or approximate search over stored embeddings, and the text-level pipeline."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.pairs import ann
from dupfind.pairs.identical import Hits, expand_rows, unique_texts
from dupfind.thresholds import Rule
from dupfind.vectors.encoding import Embeddings, Progress, TokenCounts, available_cores
from dupfind.vectors.row_file import RowFile

if TYPE_CHECKING:
    import pandas as pd

    from dupfind.vectors.embedder import Embedder

DEFAULT_TOP_K = 10
INDEXES = ("exact", "ann", "auto")
FRAME_ROWS = 100_000  # pairs per frame of `MinedPairs.frames`
# From this many rows `index="auto"` mines with the approximate index (dupfind.pairs.ann) instead of comparing
# every pair: on real questions it breaks even near 12k rows and is 2x faster at 20k, 5x at 70k.
ANN_MIN_ROWS = 20_000
# Exact search multiplies tiles of _TILE_ROWS × _TILE_COLS scores (16 MB), small enough to stay in cache
# while they are thresholded; the approximate search compares at most _TILE_COLS probing rows at a time.
_TILE_ROWS = 1024
_TILE_COLS = 4096


class Decider(Protocol):
    """What decides among candidate pairs when a rule re-ranks: `dupfind.pairs.rerank.Reranker`."""

    def decide(self, pairs: MinedPairs, texts: Sequence[str], rule: Rule) -> MinedPairs: ...


@dataclass(frozen=True)
class MinedPairs:
    """Pairs of row positions with their cosine scores, best first (ties: lower rows first).

    Within one set of rows `left < right`; pairs of a query with a corpus (`mine_against`) have the query
    in `left` and the corpus row in `right`. `truncated` counts the rows that had more than `top_k`
    neighbours above the threshold, of which only the best `top_k` were kept. Re-ranked pairs
    (`dupfind.pairs.rerank`) carry the re-ranker's score too, and rank by it. Pairs found by a pipeline carry
    the `rule` they passed and, when re-ranked, how many `candidates` the bi-encoder proposed.
    """

    left: NDArray[np.int64]
    right: NDArray[np.int64]
    scores: NDArray[np.float32]
    truncated: int = 0
    rerank_scores: NDArray[np.float32] | None = None
    rule: Rule | None = None
    candidates: int | None = None

    def describe(self) -> str:
        """The rule these pairs passed, in words (e.g. "cosine ≥ 0.842")."""
        return "" if self.rule is None else self.rule.describe(self.candidates)

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls) -> MinedPairs:
        """No pairs."""
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, np.zeros(0, dtype=np.float32))

    @classmethod
    def concat(cls, parts: Sequence[MinedPairs]) -> MinedPairs:
        """Several sets of pairs as one, best first; their truncated rows are added up."""
        if not parts:
            return cls.empty()
        reranked = [part.rerank_scores for part in parts if part.rerank_scores is not None]
        if reranked and len(reranked) != len(parts):
            raise ValueError("cannot join re-ranked pairs with pairs that were not")
        return cls(
            np.concatenate([part.left for part in parts]),
            np.concatenate([part.right for part in parts]),
            np.concatenate([part.scores for part in parts]).astype(np.float32),
            sum(part.truncated for part in parts),
            np.concatenate(reranked).astype(np.float32) if reranked else None,
        ).sorted()

    def sorted(self) -> MinedPairs:
        """The pairs best first (by re-rank score when re-ranked, then cosine), ties by lower `left`, then `right`."""
        keys = (self.right, self.left, -self.scores)
        order = np.lexsort(keys if self.rerank_scores is None else (*keys, -self.rerank_scores))
        return self.take(order)

    def take(self, rows: NDArray[np.int64] | NDArray[np.bool_] | slice) -> MinedPairs:
        """The pairs at these positions (or mask), in that order."""
        rerank = None if self.rerank_scores is None else self.rerank_scores[rows]
        return replace(
            self, left=self.left[rows], right=self.right[rows], scores=self.scores[rows], rerank_scores=rerank
        )

    def shifted(self, right_offset: int) -> MinedPairs:
        """The pairs with `right_offset` added to `right` (to number a corpus's rows after the queries')."""
        return replace(self, right=self.right + right_offset)

    def head(self, count: int | None) -> MinedPairs:
        """The best `count` pairs (all of them for None)."""
        return self if count is None else self.take(slice(0, count))

    def to_frame(self, ids: Sequence[object], texts: Sequence[str]) -> pd.DataFrame:
        """The pairs as a table: `score` (cosine), `rerank_score` if re-ranked, `id_a, question_a, id_b,
        question_b`, best first."""
        return next(self.frames(ids, texts, max(1, len(self))))

    def frames(self, ids: Sequence[object], texts: Sequence[str], rows: int = FRAME_ROWS) -> Iterator[pd.DataFrame]:
        """`to_frame` in chunks of `rows` pairs (one empty frame for no pairs), made one at a time as they are asked
        for: what `dupfind.io.write.write_table` writes without holding every pair's texts at once."""
        import pandas as pd  # imported here: `dupfind compare` starts faster without pandas

        from dupfind.io.questions import id_column

        id_values = id_column(ids).to_numpy()
        text_values = np.asarray(texts, dtype=object)
        for start in range(0, max(1, len(self)), rows):
            chunk = self.take(slice(start, start + rows))
            columns: dict[str, object] = {"score": np.round(chunk.scores.astype(np.float64), 6)}
            if chunk.rerank_scores is not None:
                columns["rerank_score"] = np.round(chunk.rerank_scores.astype(np.float64), 6)
            columns |= {
                "id_a": id_values[chunk.left],
                "question_a": text_values[chunk.left],
                "id_b": id_values[chunk.right],
                "question_b": text_values[chunk.right],
            }
            yield pd.DataFrame(columns, index=pd.RangeIndex(start, start + len(chunk)))


def check_threshold(threshold: float) -> None:
    """Reject thresholds that no cosine score can be compared with."""
    if not -1.0 <= threshold <= 1.0 or np.isnan(threshold):
        raise DupfindError(f"the threshold must be between -1 and 1, got {threshold}")


def check_top_k(top_k: int) -> None:
    """Reject a number of neighbours per row below one."""
    if top_k < 1:
        raise DupfindError(f"top-k must be at least 1, got {top_k}")


def check_index(index: str) -> None:
    """Reject an unknown index kind."""
    if index not in INDEXES:
        raise DupfindError(f"the index must be exact, ann or auto, got '{index}'")


def mine_embeddings(
    embeddings: Embeddings,
    threshold: float,
    top_k: int = DEFAULT_TOP_K,
    progress: Progress | None = None,
    index: str = "auto",
) -> MinedPairs:
    """All pairs with cosine ≥ threshold among L2-normalised rows, each row keeping its best `top_k`.

    A pair is kept when it is among the `top_k` best of either of its rows. `index` is `exact` (every
    pair, compared tile by tile, never an n×n matrix), `ann` (only the pairs that the inverted-file index
    of `dupfind.pairs.ann` puts near each other: ≥ 99.9% of the exact pairs on real data) or `auto` (`ann` from
    `ANN_MIN_ROWS` rows). Scores are exact float32 either way. Uses one thread per available core.
    """
    pairs, _ = _mine(embeddings, threshold, top_k, progress, index)
    return pairs


def _mine(
    embeddings: Embeddings, threshold: float, top_k: int, progress: Progress | None, index: str
) -> tuple[MinedPairs, NDArray[np.int64]]:
    """`mine_embeddings`, and the rows that had more than `top_k` neighbours above the threshold."""
    check_threshold(threshold)
    check_top_k(top_k)
    check_index(index)
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    pool = _Candidates(top_k)
    with _workers() as mapper:
        if index == "ann" or (index == "auto" and len(embeddings) >= ANN_MIN_ROWS):
            hits = _ann_hits(embeddings, threshold, mapper)
        else:
            hits = _exact_hits(embeddings, threshold, mapper)
        for left, right, scores, done in hits:
            pool.add(left, right, scores)
            if progress is not None:
                progress(done, len(embeddings))
    return pool.pairs()


@contextmanager
def _workers() -> Iterator[ann.Mapper]:
    """`map` over a thread per available core, with BLAS single-threaded (it would fight the threads)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(available_cores()) as executor:
        yield executor.map


def _exact_hits(embeddings: Embeddings, threshold: float, mapper: ann.Mapper) -> Iterator[tuple[*Hits, int]]:
    """Every pair `i < j` above the threshold, a block of rows `i` at a time (with how many rows it covers)."""
    n = len(embeddings)

    def block(start: int) -> Hits:
        stop = min(start + _TILE_ROWS, n)
        buffer = np.empty(_TILE_ROWS * _TILE_COLS, dtype=np.float32)
        found = []
        for first in range(start, n, _TILE_COLS):
            last = min(first + _TILE_COLS, n)
            scores = buffer[: (stop - start) * (last - first)].reshape(stop - start, last - first)
            np.matmul(embeddings[start:stop], embeddings[first:last].T, out=scores)
            rows, cols = np.nonzero(scores >= threshold)
            above = cols + first > rows + start
            rows, cols = rows[above], cols[above]
            found.append((rows + start, cols + first, scores[rows, cols]))
        return _concat(found)

    starts = range(0, n, _TILE_ROWS)
    for start, hits in zip(starts, mapper(block, starts), strict=True):
        yield (*hits, min(_TILE_ROWS, n - start))


def _ann_hits(embeddings: Embeddings, threshold: float, mapper: ann.Mapper) -> Iterator[tuple[*Hits, int]]:
    """The pairs above the threshold among those the index compares, each once, a cell at a time (with how
    many rows are stored in it)."""
    if len(embeddings) < 2:
        return
    cells = ann.partition(embeddings, mapper=mapper)

    def cell(index: int) -> Hits:
        return score_cell(embeddings, cells.cell(index), threshold)

    for index, hits in enumerate(mapper(cell, range(len(cells)))):
        yield (*hits, int(cells.stored_at[index + 1] - cells.stored_at[index]))


def score_cell(embeddings: Embeddings | RowFile, cell: ann.CellRows, threshold: float) -> Hits:
    """The pairs above the threshold of one cell of the inverted-file index (rows in memory or in a file): each
    row probing it against each row stored in it, compared exactly, `_TILE_COLS` probing rows at a time. A pair
    found from both of its rows (each probes the other's cell) is kept from its lower row only, so every pair
    comes from exactly one cell. The one scoring of the approximate index: the local engine and
    `dupfind.ray.mine` both call it.
    """
    found = []
    vectors = embeddings[cell.stored]
    for first in range(0, len(cell.probing), _TILE_COLS):
        queries = cell.probing[first : first + _TILE_COLS]
        scores = embeddings[queries] @ vectors.T
        rows, cols = np.nonzero(scores >= threshold)
        left, right = queries[rows], cell.stored[cols]
        # A pair found from both of its rows is kept from its lower one.
        homes = cell.homes[first + rows]
        keep = (left < right) | ((left > right) & ~(cell.probes[cols] == homes[:, None]).any(axis=1))
        found.append((left[keep], right[keep], scores[rows[keep], cols[keep]]))
    return _concat(found)


def top_k_pairs(hits: Iterable[Hits], top_k: int) -> tuple[MinedPairs, NDArray[np.int64]]:
    """The pairs among `hits` (each pair at most once) kept by `top_k` per row, best first, and the rows that
    had more than `top_k` neighbours. A pair is kept when it is among the `top_k` best of either of its rows.

    Pruning parts of the hits first (each by itself) and then all that is left gives the same pairs, when
    the truncated rows of the parts are added: how the Ray engine merges the cells' pairs.
    """
    pool = _Candidates(top_k)
    for left, right, scores in hits:
        pool.add(left, right, scores)
    return pool.pairs()


def _concat(parts: list[Hits]) -> Hits:
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    return (
        np.concatenate([part[0] for part in parts]),
        np.concatenate([part[1] for part in parts]),
        np.concatenate([part[2] for part in parts]),
    )


class _Candidates:
    """Best `top_k` neighbours of each row, kept in both directions of every pair seen."""

    initial_limit = 1 << 20

    def __init__(self, top_k: int) -> None:
        self.top_k = top_k
        self.source: list[NDArray[np.int64]] = []
        self.target: list[NDArray[np.int64]] = []
        self.scores: list[NDArray[np.float32]] = []
        self.size = 0
        self.limit = self.initial_limit
        self.truncated_rows: set[int] = set()

    def add(self, left: NDArray[np.int64], right: NDArray[np.int64], scores: NDArray[np.float32]) -> None:
        self.source += [left, right]
        self.target += [right, left]
        self.scores += [scores, scores]
        self.size += 2 * len(scores)
        if self.size > self.limit:
            self._prune()
            self.limit = max(self.limit, 2 * self.size)

    def _prune(self) -> None:
        source: NDArray[np.int64] = np.concatenate(self.source)
        target: NDArray[np.int64] = np.concatenate(self.target)
        scores: NDArray[np.float32] = np.concatenate(self.scores)
        self.source, self.target, self.scores = [], [], []
        order = np.lexsort((target, -scores, source))
        source = source[order]  # one array at a time: each freed as its sorted copy is made
        target = target[order]
        scores = scores[order]
        del order
        starts = np.flatnonzero(np.r_[True, source[1:] != source[:-1]])
        rank = np.arange(len(source))
        rank -= np.repeat(starts, np.diff(np.r_[starts, len(source)]))
        self.truncated_rows.update(source[rank == self.top_k].tolist())
        keep = rank < self.top_k
        del rank
        self.source, self.target, self.scores = [source[keep]], [target[keep]], [scores[keep]]
        self.size = int(keep.sum())

    def pairs(self) -> tuple[MinedPairs, NDArray[np.int64]]:
        """The pairs kept, best first, and the rows that had more than `top_k` neighbours."""
        if self.size == 0:
            return MinedPairs.empty(), np.zeros(0, dtype=np.int64)
        self._prune()
        source, target, scores = self.source.pop(), self.target.pop(), self.scores.pop()
        left, right = np.minimum(source, target), np.maximum(source, target)
        del source, target
        _, first = np.unique(left * (int(right.max()) + 1) + right, return_index=True)
        truncated = np.array(sorted(self.truncated_rows), dtype=np.int64)
        pairs = MinedPairs(left[first], right[first], scores[first].astype(np.float32), len(truncated))
        return pairs.sorted(), truncated


def mine_texts(
    embedder: Embedder,
    texts: Sequence[str],
    rule: Rule | float,
    top_k: int = DEFAULT_TOP_K,
    index: str = "auto",
    tokens: TokenCounts | None = None,
    mining_progress: Progress | None = None,
    reranker: Decider | None = None,
) -> MinedPairs:
    """Mine the duplicate pairs among texts by a `Rule` (a float: a cosine threshold alone), each row keeping its
    best `top_k` neighbours; when the rule re-ranks, `reranker` decides among the pairs mined at its cosine.

    Identical texts (up to case and whitespace) are embedded once and paired with score 1.0; they count
    as neighbours like any other, so a question repeated many times keeps `top_k` pairs per row, not all
    of them. `tokens` are the texts' token counts when already known; `index` is `mine_embeddings`'.
    `mining_progress(done, total)` counts the distinct texts mined (the embedder reports the encoding).
    """
    rule = Rule.of(rule)
    check_top_k(top_k)
    first, inverse = unique_texts(texts)
    unique_tokens = None if tokens is None else tokens[first]
    embeddings = embedder.embed([texts[row] for row in first], unique_tokens)
    mined = mine_grouped(embeddings, inverse, rule.cosine, top_k, index, mining_progress)
    return decide(mined, texts, rule, reranker)


def decide(pairs: MinedPairs, texts: Sequence[str], rule: Rule, reranker: Decider | None = None) -> MinedPairs:
    """The pairs (rows of `texts`, mined at the rule's cosine) that pass the rule, carrying it: all of them,
    unless the rule re-ranks, then those whose re-rank score reaches it."""
    if not rule.reranks:
        return replace(pairs, rule=rule)
    if reranker is None:
        raise DupfindError(f"pairs are duplicates by {rule.describe()}: that needs a re-ranker")
    return reranker.decide(pairs, texts, rule)


def expand_identical(
    mined: MinedPairs, truncated: NDArray[np.int64], inverse: NDArray[np.int64], top_k: int
) -> MinedPairs:
    """Pairs of distinct texts as pairs of rows, with the pairs of identical texts (see `identical.expand_rows`)."""
    rows = expand_rows((mined.left, mined.right, mined.scores), truncated, inverse, top_k)
    return MinedPairs(*rows).sorted()


def mine_grouped(
    embeddings: Embeddings,
    inverse: NDArray[np.int64],
    threshold: float,
    top_k: int = DEFAULT_TOP_K,
    index: str = "auto",
    progress: Progress | None = None,
) -> MinedPairs:
    """`mine_texts` on the embeddings of the distinct texts: row `i`'s text is `inverse[i]` (see `unique_texts`)."""
    mined, truncated = _mine(embeddings, threshold, top_k, progress, index)
    return expand_identical(mined, truncated, inverse, top_k)
