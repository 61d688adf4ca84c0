"""Identical texts (up to case and whitespace): each distinct text is embedded and mined once, and its rows are
paired with score 1.0 and expanded back, each row keeping its `top_k` neighbours."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

Hits = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]  # left rows, right rows, cosines


def normalize_text(text: str) -> str:
    """The key under which texts count as identical: case and whitespace ignored."""
    return " ".join(text.casefold().split())


def unique_texts(texts: Sequence[str]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The first row of each distinct text (up to case and whitespace), and each row's distinct text."""
    seen: dict[str, int] = {}
    inverse = np.fromiter((seen.setdefault(normalize_text(text), len(seen)) for text in texts), np.int64, len(texts))
    first = np.full(len(seen), len(texts), dtype=np.int64)
    np.minimum.at(first, inverse, np.arange(len(texts)))
    return first, inverse


EXPAND_PAIRS = 1 << 20  # pairs of rows made at a time, so that memory stays a few times the pairs kept


def expand_rows(mined: Hits, truncated: NDArray[np.int64], inverse: NDArray[np.int64], top_k: int) -> tuple[*Hits, int]:
    """Pairs of distinct texts (`mined`: left, right, scores) as pairs of rows (`inverse[row]` is a row's
    distinct text) with the pairs of identical texts (score 1.0), each row keeping its `top_k` best neighbours
    (ties: lower rows first); and how many rows had more.

    A row's neighbours are first the rows of its own text, then those of the texts mined near it, best
    first; a pair is kept when it is among the `top_k` of either of its rows, as in `mine_embeddings`. So
    the pairs stay under `top_k` per row however often a text is repeated.
    """
    sizes = np.bincount(inverse).astype(np.int64)
    members = np.argsort(inverse, kind="stable")  # rows grouped by text, in row order
    starts = np.cumsum(sizes) - sizes
    same = _identical_pairs(sizes, starts, members, top_k)
    # Each directed edge (text -> neighbour text), best first per text, gives the text's rows the first
    # rows of the neighbour text that fit in what is left of their top_k after their identical rows.
    source, target, scores = _directed_best_first(mined, starts)
    neighbours = sizes - 1 + np.bincount(source, weights=sizes[target], minlength=len(sizes)).astype(np.int64)
    over = neighbours > top_k
    over[truncated] = True
    del neighbours
    budget = np.maximum(0, top_k - (sizes - 1))
    take = np.clip(budget[source] - _exclusive_cumsum_by(sizes[target], source), 0, sizes[target])
    live = np.flatnonzero(take)
    source = source[live]  # one at a time, each array freed as its live part is taken
    target = target[live]
    scores = scores[live]
    take = take[live]
    del live
    count = sizes[source] * take
    left = np.empty(len(same[0]) + int(count.sum()), dtype=np.int64)
    right = np.empty_like(left)
    pair_scores = np.ones(len(left), dtype=np.float32)
    left[: len(same[0])], right[: len(same[0])] = same
    filled = len(same[0])
    bounds = np.searchsorted(np.cumsum(count), np.arange(EXPAND_PAIRS, len(left) - filled, EXPAND_PAIRS), "right")
    for edges in np.split(np.arange(len(count)), bounds):  # about EXPAND_PAIRS pairs of rows each
        a, b = _rows_of_edges(members, starts[source[edges]], starts[target[edges]], take[edges], count[edges])
        stop = filled + len(a)
        left[filled:stop], right[filled:stop] = np.minimum(a, b), np.maximum(a, b)
        pair_scores[filled:stop] = np.repeat(scores[edges], count[edges])
        filled = stop
    del source, target, scores, take, count
    _, unique = np.unique(left * (len(inverse) + 1) + right, return_index=True)
    return left[unique], right[unique], pair_scores[unique], int(sizes[over].sum())


def _directed_best_first(mined: Hits, starts: NDArray[np.int64]) -> Hits:
    """Each mined pair in both directions (source text, target text, score), grouped by source, best first,
    ties by the target's first row."""
    mined_left, mined_right, mined_scores = mined
    source = np.concatenate([mined_left, mined_right])
    target = np.concatenate([mined_right, mined_left])
    scores = np.concatenate([mined_scores, mined_scores])
    order = np.lexsort((starts[target], -scores, source))
    source = source[order]  # one at a time, each array freed as its sorted copy is made
    target = target[order]
    return source, target, scores[order]


def _rows_of_edges(
    members: NDArray[np.int64],
    source_starts: NDArray[np.int64],
    target_starts: NDArray[np.int64],
    take: NDArray[np.int64],
    count: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The pairs of rows of some edges: every row of the source text (`count // take` of them, from its
    `source_starts` in `members`) with the first `take` rows of the target text."""
    edge = np.repeat(np.arange(len(count)), count)
    within = np.arange(len(edge)) - np.repeat(np.cumsum(count) - count, count)
    return members[source_starts[edge] + within // take[edge]], members[target_starts[edge] + within % take[edge]]


def _identical_pairs(
    sizes: NDArray[np.int64], starts: NDArray[np.int64], members: NDArray[np.int64], top_k: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The kept pairs among rows of one text: each row's `top_k` are its text's first rows (other than itself).
    Texts of one size are paired together, a row of the matrix of their rows each."""
    lefts: list[NDArray[np.int64]] = []
    rights: list[NDArray[np.int64]] = []
    for size in np.unique(sizes[sizes > 1]).tolist():
        texts = np.flatnonzero(sizes == size)
        rows = members[starts[texts][:, None] + np.arange(size)]  # each text's rows, in row order
        head, tail = rows[:, : top_k + 1], rows[:, top_k + 1 :]
        i, j = np.triu_indices(head.shape[1], k=1)
        lefts += [head[:, i].ravel(), np.repeat(tail, top_k, axis=1).ravel()]
        rights += [head[:, j].ravel(), np.tile(head[:, :top_k], (1, tail.shape[1])).ravel()]
    if not lefts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    first, second = np.concatenate(lefts), np.concatenate(rights)
    return np.minimum(first, second), np.maximum(first, second)


def _exclusive_cumsum_by(values: NDArray[np.int64], groups: NDArray[np.int64]) -> NDArray[np.int64]:
    """For sorted `groups`, the sum of the `values` before each position within its group."""
    total = np.cumsum(values) - values
    if not len(values):
        return total
    group_start = np.r_[0, np.flatnonzero(groups[1:] != groups[:-1]) + 1]
    offsets = np.repeat(total[group_start], np.diff(np.r_[group_start, len(values)]))
    return total - offsets
