"""Mining duplicate pairs: exact or approximate search over stored embeddings, and the text-level pipeline."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import pandas as pd

from dupfind import ann
from dupfind.encoding import Embeddings, Encoder, Progress, TokenCounts, available_cores, encode
from dupfind.errors import DupfindError

DEFAULT_TOP_K = 10
INDEXES = ("exact", "ann", "auto")
# From this many rows `index="auto"` mines with the approximate index (dupfind.ann) instead of comparing
# every pair: on real questions it breaks even near 12k rows and is 2x faster at 20k, 5x at 70k.
ANN_MIN_ROWS = 20_000
# Exact search multiplies tiles of _TILE_ROWS × _TILE_COLS scores (16 MB), small enough to stay in cache
# while they are thresholded; the approximate search compares at most _TILE_COLS probing rows at a time.
_TILE_ROWS = 1024
_TILE_COLS = 4096
Hits = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]


@dataclass(frozen=True)
class MinedPairs:
    """Pairs of row positions (`left < right`) with their cosine scores, best first.

    `truncated` counts the rows that had more than `top_k` neighbours above the threshold,
    of which only the best `top_k` were kept.
    """

    left: NDArray[np.int64]
    right: NDArray[np.int64]
    scores: NDArray[np.float32]
    truncated: int = 0

    def __len__(self) -> int:
        return len(self.scores)


def check_threshold(threshold: float) -> None:
    """Reject thresholds that no cosine score can be compared with."""
    if not -1.0 <= threshold <= 1.0 or np.isnan(threshold):
        raise DupfindError(f"--threshold must be between -1 and 1, got {threshold}")


def check_index(index: str) -> None:
    """Reject an unknown `--index`."""
    if index not in INDEXES:
        raise DupfindError(f"--index must be exact, ann or auto, got '{index}'")


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
    of `dupfind.ann` puts near each other: ≥ 99.9% of the exact pairs on real data) or `auto` (`ann` from
    `ANN_MIN_ROWS` rows). Scores are exact float32 either way. Uses one thread per available core.
    """
    check_threshold(threshold)
    if top_k < 1:
        raise DupfindError(f"--top-k must be at least 1, got {top_k}")
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
        probing, stored = cells.cell(index)
        found = []
        vectors = embeddings[stored]
        for first in range(0, len(probing), _TILE_COLS):
            queries = probing[first : first + _TILE_COLS]
            scores = embeddings[queries] @ vectors.T
            rows, cols = np.nonzero(scores >= threshold)
            left, right = queries[rows], stored[cols]
            # A pair found from both of its rows is kept from its lower one.
            keep = (left < right) | ((left > right) & ~cells.probed(right, cells.probes[left, 0]))
            found.append((left[keep], right[keep], scores[rows[keep], cols[keep]]))
        return _concat(found)

    for index, hits in enumerate(mapper(cell, range(len(cells)))):
        yield (*hits, int(cells.stored_at[index + 1] - cells.stored_at[index]))


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
        order = np.lexsort((target, -scores, source))
        source, target, scores = source[order], target[order], scores[order]
        starts = np.flatnonzero(np.r_[True, source[1:] != source[:-1]])
        rank = np.arange(len(source)) - np.repeat(starts, np.diff(np.r_[starts, len(source)]))
        keep = rank < self.top_k
        self.truncated_rows.update(source[rank == self.top_k].tolist())
        self.source, self.target, self.scores = [source[keep]], [target[keep]], [scores[keep]]
        self.size = int(keep.sum())

    def pairs(self) -> MinedPairs:
        if self.size == 0:
            empty = np.zeros(0, dtype=np.int64)
            return MinedPairs(empty, empty, np.zeros(0, dtype=np.float32))
        self._prune()
        source, target, scores = self.source[0], self.target[0], self.scores[0]
        left, right = np.minimum(source, target), np.maximum(source, target)
        keys = left * (int(right.max()) + 1) + right
        _, first = np.unique(keys, return_index=True)
        left, right, scores = left[first], right[first], scores[first]
        order = np.lexsort((right, left, -scores))
        return MinedPairs(left[order], right[order], scores[order].astype(np.float32), len(self.truncated_rows))


def normalize_text(text: str) -> str:
    """The key under which texts count as identical: case and whitespace ignored."""
    return " ".join(text.casefold().split())


def mine_texts(
    encoder: Encoder,
    texts: Sequence[str],
    threshold: float,
    top_k: int = DEFAULT_TOP_K,
    batch_size: int = 64,
    encode_progress: Progress | None = None,
    embed: Callable[[Sequence[str], TokenCounts | None], Embeddings] | None = None,
    index: str = "auto",
    tokens: TokenCounts | None = None,
) -> MinedPairs:
    """Mine duplicate pairs among texts; identical texts are encoded once and paired with score 1.0.

    `embed(texts, their tokens)`, when given, replaces plain encoding (e.g. to go through the embedding
    cache); `tokens` are the texts' token counts when already known; `index` is `mine_embeddings`'.
    """
    check_threshold(threshold)
    groups: dict[str, list[int]] = {}
    for position, text in enumerate(texts):
        groups.setdefault(normalize_text(text), []).append(position)
    members = list(groups.values())
    first = [group[0] for group in members]
    unique_texts = [texts[row] for row in first]
    unique_tokens = None if tokens is None else tokens[first]
    if embed is not None:
        embeddings = embed(unique_texts, unique_tokens)
    else:
        embeddings = encode(encoder, unique_texts, batch_size, encode_progress, unique_tokens)
    mined = mine_embeddings(embeddings, threshold, top_k, index=index)
    return _expand_identical(mined, members, top_k)


def _expand_identical(mined: MinedPairs, members: list[list[int]], top_k: int) -> MinedPairs:
    """Map pairs of unique texts back to input rows and add the pairs of identical texts (score 1.0)."""
    links: list[tuple[int, int]] = []
    truncated = mined.truncated
    for group in members:
        if len(group) - 1 > top_k:
            truncated += len(group)
            links += [(group[0], other) for other in group[1:]]
        elif len(group) > 1:
            links += [(a, b) for index, a in enumerate(group) for b in group[index + 1 :]]
    sizes = np.fromiter(map(len, members), dtype=np.int64, count=len(members))
    rows = np.fromiter(itertools.chain.from_iterable(members), dtype=np.int64, count=int(sizes.sum()))
    offsets = np.cumsum(sizes) - sizes
    counts = sizes[mined.left] * sizes[mined.right]
    pair = np.repeat(np.arange(len(mined), dtype=np.int64), counts)
    within = np.arange(len(pair), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    width = sizes[mined.right][pair]
    a = rows[offsets[mined.left][pair] + within // width]
    b = rows[offsets[mined.right][pair] + within % width]
    same = np.asarray(links, dtype=np.int64).reshape(-1, 2)
    left = np.concatenate([same[:, 0], np.minimum(a, b)])
    right = np.concatenate([same[:, 1], np.maximum(a, b)])
    scores = np.concatenate([np.ones(len(same), dtype=np.float32), mined.scores[pair]])
    order = np.lexsort((right, left, -scores))
    return MinedPairs(left[order], right[order], scores[order], truncated)


def pairs_frame(mined: MinedPairs, ids: Sequence[object], texts: Sequence[str]) -> pd.DataFrame:
    """The mined pairs as a table: `score, id_a, question_a, id_b, question_b`, best first."""
    import pandas as pd  # imported here: `dupfind compare` starts faster without pandas

    id_values = pd.Series(list(ids)).to_numpy()
    text_values = np.asarray(texts, dtype=object)
    return pd.DataFrame(
        {
            "score": np.round(mined.scores.astype(np.float64), 6),
            "id_a": id_values[mined.left],
            "question_a": text_values[mined.left],
            "id_b": id_values[mined.right],
            "question_b": text_values[mined.right],
        }
    )
