"""Mining: exact against brute force, top-k bookkeeping, identical texts, ordering."""

from __future__ import annotations

import numpy as np
import pytest

from dupfind.encoding import normalize
from dupfind.errors import DupfindError
from dupfind.mining import mine_embeddings, mine_texts, normalize_text, pairs_frame
from tests.conftest import FakeEncoder


def brute_force(embeddings: np.ndarray, threshold: float, top_k: int) -> dict[tuple[int, int], float]:
    scores = embeddings @ embeddings.T
    np.fill_diagonal(scores, -np.inf)
    kept: dict[tuple[int, int], float] = {}
    for i, row in enumerate(scores):
        best = [j for j in np.argsort(-row, kind="stable")[:top_k] if row[j] >= threshold]
        for j in best:
            kept[(min(i, j), max(i, j))] = float(row[j])
    return kept


def clustered_embeddings(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n // 4, 32))
    return normalize(centres[rng.integers(0, len(centres), n)] + 0.35 * rng.normal(size=(n, 32)))


@pytest.mark.parametrize(("threshold", "top_k"), [(0.8, 10), (0.5, 3), (-1.0, 2), (0.95, 1)])
def test_matches_brute_force(threshold: float, top_k: int) -> None:
    embeddings = clustered_embeddings(300)
    mined = mine_embeddings(embeddings, threshold, top_k)
    expected = brute_force(embeddings, threshold, top_k)
    got = {(int(a), int(b)): float(s) for a, b, s in zip(mined.left, mined.right, mined.scores, strict=True)}
    assert got.keys() == expected.keys()
    assert all(abs(got[key] - expected[key]) < 1e-5 for key in got)
    assert np.all(mined.left < mined.right)
    assert np.all(np.diff(mined.scores) <= 1e-7)


def test_blocks_do_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    embeddings = clustered_embeddings(400, seed=1)
    whole = mine_embeddings(embeddings, 0.7, 5)
    monkeypatch.setattr("dupfind.mining._BLOCK_BYTES", 4 * 400 * 16)
    monkeypatch.setattr("dupfind.mining._Candidates.initial_limit", 8)
    blocked = mine_embeddings(embeddings, 0.7, 5)
    assert np.array_equal(whole.left, blocked.left) and np.array_equal(whole.right, blocked.right)


def test_truncation_is_counted() -> None:
    embeddings = normalize(np.ones((6, 4)) + 0.01 * np.arange(24).reshape(6, 4))
    mined = mine_embeddings(embeddings, 0.5, top_k=2)
    assert mined.truncated > 0
    assert mine_embeddings(embeddings, 0.5, top_k=5).truncated == 0


def test_bad_parameters() -> None:
    embeddings = clustered_embeddings(8)
    with pytest.raises(DupfindError, match="between -1 and 1"):
        mine_embeddings(embeddings, 1.5)
    with pytest.raises(DupfindError, match="--top-k"):
        mine_embeddings(embeddings, 0.5, top_k=0)


def test_identical_texts_are_encoded_once_and_score_one(fake_encoder: FakeEncoder) -> None:
    texts = ["How do I bake bread?", "how do  I bake BREAD?", "Where is Paris?", "How do I bake bread?"]
    mined = mine_texts(fake_encoder, texts, threshold=0.99)
    encoded = [text for batch in fake_encoder.calls for text in batch]
    assert sorted(encoded) == sorted(["How do I bake bread?", "Where is Paris?"])
    pairs = {(int(a), int(b)): float(s) for a, b, s in zip(mined.left, mined.right, mined.scores, strict=True)}
    assert pairs == {(0, 1): 1.0, (0, 3): 1.0, (1, 3): 1.0}
    assert normalize_text(" A  b\tC ") == "a b c"


def test_pairs_frame_orders_and_names_columns(fake_encoder: FakeEncoder) -> None:
    texts = ["red apple pie recipe", "green tea benefits", "recipe for red apple pie", "benefits of green tea"]
    mined = mine_texts(fake_encoder, texts, threshold=0.5)
    frame = pairs_frame(mined, ["a", "b", "c", "d"], texts)
    assert list(frame.columns) == ["score", "id_a", "question_a", "id_b", "question_b"]
    assert set(zip(frame.id_a, frame.id_b, strict=True)) == {("a", "c"), ("b", "d")}
    assert frame.score.is_monotonic_decreasing
