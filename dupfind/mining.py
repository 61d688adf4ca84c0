"""Mining duplicate pairs: blocked exact search over stored embeddings, and the text-level pipeline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from dupfind.encoding import Embeddings, Encoder, Progress, encode
from dupfind.errors import DupfindError

DEFAULT_TOP_K = 10
_BLOCK_BYTES = 64 << 20


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


def mine_embeddings(
    embeddings: Embeddings,
    threshold: float,
    top_k: int = DEFAULT_TOP_K,
    progress: Progress | None = None,
) -> MinedPairs:
    """All pairs with cosine ≥ threshold among L2-normalised rows, each row keeping its best `top_k`.

    A pair is kept when it is among the `top_k` best of either of its rows. Rows are compared
    block by block against the rows after them (never an n×n matrix), so memory stays bounded
    by one block of scores plus `2·n·top_k` candidates.
    """
    check_threshold(threshold)
    if top_k < 1:
        raise DupfindError(f"--top-k must be at least 1, got {top_k}")
    n = len(embeddings)
    block = int(max(16, min(4096, _BLOCK_BYTES // (4 * max(n, 1)))))
    pool = _Candidates(top_k)
    for start in range(0, n, block):
        stop = min(start + block, n)
        scores = embeddings[start:stop] @ embeddings[start:].T
        square = scores[:, : stop - start]
        square[np.tril_indices(stop - start)] = -np.inf
        rows, cols = np.nonzero(scores >= threshold)
        pool.add(rows + start, cols + start, scores[rows, cols])
        if progress is not None:
            progress(stop - start, n)
    return pool.pairs()


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
        source, target, scores = (np.concatenate(parts) for parts in (self.source, self.target, self.scores))
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
    embed: Callable[[Sequence[str]], Embeddings] | None = None,
) -> MinedPairs:
    """Mine duplicate pairs among texts; identical texts are encoded once and paired with score 1.0.

    `embed`, when given, replaces plain encoding (e.g. to go through the embedding cache).
    """
    check_threshold(threshold)
    groups: dict[str, list[int]] = {}
    for position, text in enumerate(texts):
        groups.setdefault(normalize_text(text), []).append(position)
    members = list(groups.values())
    unique_texts = [texts[group[0]] for group in members]
    if embed is not None:
        embeddings = embed(unique_texts)
    else:
        embeddings = encode(encoder, unique_texts, batch_size=batch_size, progress=encode_progress)
    mined = mine_embeddings(embeddings, threshold, top_k)
    return _expand_identical(mined, members, top_k)


def _expand_identical(mined: MinedPairs, members: list[list[int]], top_k: int) -> MinedPairs:
    """Map pairs of unique texts back to input rows and add the pairs of identical texts (score 1.0)."""
    left: list[int] = []
    right: list[int] = []
    scores: list[float] = []
    truncated = mined.truncated
    for group in members:
        if len(group) < 2:
            continue
        if len(group) - 1 > top_k:
            truncated += len(group)
            links = [(group[0], other) for other in group[1:]]
        else:
            links = [(a, b) for index, a in enumerate(group) for b in group[index + 1 :]]
        for a, b in links:
            left.append(a)
            right.append(b)
            scores.append(1.0)
    for u, v, score in zip(mined.left.tolist(), mined.right.tolist(), mined.scores.tolist(), strict=True):
        for a in members[u]:
            for b in members[v]:
                left.append(min(a, b))
                right.append(max(a, b))
                scores.append(score)
    left_array = np.asarray(left, dtype=np.int64)
    right_array = np.asarray(right, dtype=np.int64)
    score_array = np.asarray(scores, dtype=np.float32)
    order = np.lexsort((right_array, left_array, -score_array))
    return MinedPairs(left_array[order], right_array[order], score_array[order], truncated)


def pairs_frame(mined: MinedPairs, ids: Sequence[object], texts: Sequence[str]) -> pd.DataFrame:
    """The mined pairs as a table: `score, id_a, question_a, id_b, question_b`, best first."""
    left, right = mined.left, mined.right
    return pd.DataFrame(
        {
            "score": np.round(mined.scores.astype(np.float64), 6),
            "id_a": [ids[i] for i in left],
            "question_a": [texts[i] for i in left],
            "id_b": [ids[j] for j in right],
            "question_b": [texts[j] for j in right],
        }
    )
