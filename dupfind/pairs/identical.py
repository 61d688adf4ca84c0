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
    mined_left, mined_right, mined_scores = mined
    source = np.r_[mined_left, mined_right]
    target = np.r_[mined_right, mined_left]
    scores = np.r_[mined_scores, mined_scores]
    order = np.lexsort((starts[target], -scores, source))
    source, target, scores = source[order], target[order], scores[order]
    budget = np.maximum(0, top_k - (sizes - 1))
    before = _exclusive_cumsum_by(sizes[target], source)
    take = np.clip(budget[source] - before, 0, sizes[target])
    count = sizes[source] * take
    edge = np.repeat(np.arange(len(source)), count)
    within = np.arange(len(edge)) - np.repeat(np.cumsum(count) - count, count)
    a = members[starts[source][edge] + within // take[edge]] if len(edge) else edge
    b = members[starts[target][edge] + within % take[edge]] if len(edge) else edge
    left = np.r_[same[0], np.minimum(a, b)]
    right = np.r_[same[1], np.maximum(a, b)]
    pair_scores = np.r_[np.ones(len(same[0]), dtype=np.float32), scores[edge]].astype(np.float32)
    keys = left * (len(inverse) + 1) + right
    _, unique = np.unique(keys, return_index=True)
    neighbours = sizes - 1 + np.bincount(source, weights=sizes[target], minlength=len(sizes)).astype(np.int64)
    over = neighbours > top_k
    over[truncated] = True
    return left[unique], right[unique], pair_scores[unique], int(sizes[over].sum())


def _identical_pairs(
    sizes: NDArray[np.int64], starts: NDArray[np.int64], members: NDArray[np.int64], top_k: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The kept pairs among rows of one text: each row's `top_k` are its text's first rows (other than itself)."""
    lefts: list[NDArray[np.int64]] = []
    rights: list[NDArray[np.int64]] = []
    for text in np.flatnonzero(sizes > 1).tolist():
        rows = members[starts[text] : starts[text] + sizes[text]]
        head = rows[: top_k + 1]
        i, j = np.triu_indices(len(head), k=1)
        lefts += [head[i], np.repeat(rows[top_k + 1 :], min(top_k, len(head)))]
        rights += [head[j], np.tile(head[:top_k], max(0, len(rows) - top_k - 1))]
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
