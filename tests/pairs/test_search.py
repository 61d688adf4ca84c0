"""Exact search: the same top-k as a full sort; cross pairs as brute force finds them."""

from __future__ import annotations

import numpy as np
import pytest

from dupfind.errors import DupfindError
from dupfind.pairs.search import mine_against, nearest
from tests.pairs.test_mining import clustered_embeddings


def brute_top_k(queries: np.ndarray, corpus: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries @ corpus.T
    rows = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return rows, np.take_along_axis(scores, rows, axis=1)


@pytest.mark.parametrize("k", [1, 5, 300, 1000])
def test_nearest_matches_a_full_sort(k: int) -> None:
    corpus = clustered_embeddings(300, seed=1)
    queries = clustered_embeddings(40, seed=2)
    found = nearest(queries, corpus, k)
    rows, scores = brute_top_k(queries, corpus, k)
    assert found.rows.shape == (40, min(k, 300))
    assert np.array_equal(found.rows, rows)
    assert np.allclose(found.scores, scores, atol=1e-6)


def test_nearest_in_small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dupfind.pairs.search._BLOCK_BYTES", 4 * 300 * 7)
    corpus, queries = clustered_embeddings(300, seed=1), clustered_embeddings(50, seed=2)
    assert np.array_equal(nearest(queries, corpus, 4).rows, brute_top_k(queries, corpus, 4)[0])


def test_nearest_rejects_bad_input() -> None:
    corpus = clustered_embeddings(10)
    with pytest.raises(DupfindError, match="at least 1"):
        nearest(corpus, corpus, 0)
    with pytest.raises(DupfindError, match="dimensions"):
        nearest(np.ones((1, 3), dtype=np.float32), corpus)


def test_mine_against_matches_brute_force() -> None:
    corpus, queries = clustered_embeddings(300, seed=1), clustered_embeddings(60, seed=1)[::-1].copy()
    mined = mine_against(queries, corpus, 0.8, top_k=3)
    scores = queries @ corpus.T
    expected = {
        (q, int(c)) for q in range(60) for c in np.argsort(-scores[q], kind="stable")[:3] if scores[q, c] >= 0.8
    }
    assert set(zip(mined.left.tolist(), mined.right.tolist(), strict=True)) == expected
    assert np.all(np.diff(mined.scores) <= 0)
    assert mined.truncated == sum(np.sort(scores[q])[-4] >= 0.8 for q in range(60))
