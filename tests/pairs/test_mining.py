"""Mining: exact against brute force, approximate against exact, top-k bookkeeping, identical texts, ordering."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dupfind.errors import DupfindError
from dupfind.pairs import ann
from dupfind.pairs.identical import normalize_text
from dupfind.pairs.mining import MinedPairs, mine_embeddings, mine_grouped, mine_texts
from dupfind.vectors.embedder import Embedder
from dupfind.vectors.encoding import encode, normalize
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


def test_tiles_do_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    embeddings = clustered_embeddings(400, seed=1)
    whole = mine_embeddings(embeddings, 0.7, 5)
    monkeypatch.setattr("dupfind.pairs.mining._TILE_ROWS", 16)
    monkeypatch.setattr("dupfind.pairs.mining._TILE_COLS", 24)
    monkeypatch.setattr("dupfind.pairs.mining._Candidates.initial_limit", 8)
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
    with pytest.raises(DupfindError, match=r"^top-k must be at least 1"):  # no CLI flag in a library error
        mine_embeddings(embeddings, 0.5, top_k=0)
    with pytest.raises(DupfindError, match=r"^the index must be exact, ann or auto"):
        mine_embeddings(embeddings, 0.5, index="hnsw")


def as_dict(mined: MinedPairs) -> dict[tuple[int, int], float]:
    return {(int(a), int(b)): float(s) for a, b, s in zip(mined.left, mined.right, mined.scores, strict=True)}


@pytest.mark.parametrize(("threshold", "top_k"), [(0.8, 10), (0.6, 3)])
def test_ann_finds_nearly_all_exact_pairs_with_exact_scores(threshold: float, top_k: int) -> None:
    embeddings = clustered_embeddings(3000, seed=2)
    exact = as_dict(mine_embeddings(embeddings, threshold, top_k, index="exact"))
    approximate = as_dict(mine_embeddings(embeddings, threshold, top_k, index="ann"))
    assert len(exact) > 1000
    assert len(exact.keys() & approximate.keys()) >= 0.99 * len(exact)
    assert all(abs(exact[key] - approximate[key]) < 1e-5 for key in exact.keys() & approximate.keys())
    assert all(score >= threshold for score in approximate.values())


def test_auto_switches_to_ann_from_the_measured_size(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real_partition = ann.partition

    def spy(embeddings: np.ndarray, *args: object, **kwargs: object) -> ann.Cells:
        calls.append(len(embeddings))
        return real_partition(embeddings, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ann, "partition", spy)
    monkeypatch.setattr("dupfind.pairs.mining.ANN_MIN_ROWS", 500)
    mine_embeddings(clustered_embeddings(499), 0.8)
    mine_embeddings(clustered_embeddings(500), 0.8, index="exact")
    assert calls == []
    mine_embeddings(clustered_embeddings(500), 0.8)
    mine_embeddings(clustered_embeddings(100), 0.8, index="ann")
    assert calls == [500, 100]


@pytest.mark.parametrize("index", ["exact", "ann"])
def test_progress_counts_every_row(monkeypatch: pytest.MonkeyPatch, index: str) -> None:
    monkeypatch.setattr("dupfind.pairs.mining._TILE_ROWS", 64)
    done: list[int] = []
    mine_embeddings(clustered_embeddings(1000), 0.8, progress=lambda step, total: done.append(step), index=index)
    assert sum(done) == 1000 and len(done) > 1


@pytest.mark.parametrize("rows", [15, 40])
def test_ann_counts_each_pair_once(rows: int) -> None:
    embeddings = clustered_embeddings(rows, seed=4)
    exact = mine_embeddings(embeddings, -1.0, top_k=3, index="exact")
    approximate = mine_embeddings(embeddings, -1.0, top_k=3, index="ann")
    assert approximate.truncated == exact.truncated == rows
    if rows == 15:  # a single cell: the index compares every pair
        assert as_dict(approximate).keys() == as_dict(exact).keys()


def test_empty_and_single_inputs() -> None:
    for rows in (0, 1):
        for index in ("exact", "ann"):
            assert len(mine_embeddings(np.zeros((rows, 4), dtype=np.float32), 0.5, index=index)) == 0


def reference_expansion(
    texts: list[str], threshold: float, top_k: int, encoder: FakeEncoder
) -> tuple[set[tuple[int, int]], int]:
    """What `mine_texts` must return, by brute force over rows: identical texts score 1.0, each row keeps its
    `top_k` best neighbours above the threshold (ties: lower rows first), a pair is kept from either row;
    and how many rows had more than `top_k` neighbours."""
    keys = [normalize_text(text) for text in texts]
    distinct = list(dict.fromkeys(keys))
    embeddings = encode(encoder, [texts[keys.index(key)] for key in distinct])
    rows = embeddings[[distinct.index(key) for key in keys]]
    scores = rows @ rows.T
    same = np.array([[a == b for b in keys] for a in keys])
    scores[same] = 1.0
    np.fill_diagonal(scores, -np.inf)
    pairs, truncated = set(), 0
    for i, row in enumerate(scores):
        above = [j for j in np.lexsort((np.arange(len(row)), -row)) if row[j] >= threshold]
        truncated += len(above) > top_k
        pairs |= {(min(i, j), max(i, j)) for j in above[:top_k]}
    return pairs, truncated


@pytest.mark.parametrize("chunk", [1 << 20, 5])
def test_repeated_texts_expand_to_every_row(
    fake_encoder: FakeEncoder, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made in chunks of `chunk` pairs of rows at a time (`identical.EXPAND_PAIRS`) or all at once, alike."""
    monkeypatch.setattr("dupfind.pairs.identical.EXPAND_PAIRS", chunk)
    rng = np.random.default_rng(5)
    base = [
        "bake bread at home",
        "bake bread at home today",
        "learn french fast",
        "learn french quickly now",
        "why is the sky blue",
        "fix a flat tyre",
    ]
    texts = [base[i].upper() if rng.random() < 0.3 else base[i] for i in rng.integers(0, len(base), 40)]
    mined = mine_texts(Embedder(fake_encoder), texts, rule=0.6, top_k=3)
    expected, truncated = reference_expansion(texts, 0.6, 3, FakeEncoder())
    assert set(zip(mined.left.tolist(), mined.right.tolist(), strict=True)) == expected
    assert mined.truncated == truncated
    assert np.all(mined.left < mined.right) and np.all(np.diff(mined.scores) <= 1e-7)
    assert mined.truncated > 0


@pytest.mark.parametrize("top_k", [1, 3, 10])
def test_repeated_texts_keep_top_k_per_row_and_say_so_truly(fake_encoder: FakeEncoder, top_k: int) -> None:
    texts = ["How do I bake bread at home?"] * 1000 + ["How do I bake bread at home today?"] * 1000
    mined = mine_texts(Embedder(fake_encoder), texts, rule=0.5, top_k=top_k)
    degree = np.bincount(np.r_[mined.left, mined.right], minlength=len(texts))
    assert len(mined) <= len(texts) * top_k
    assert mined.truncated == len(texts)  # every row had 999 or more neighbours above the threshold
    assert degree.min() >= top_k  # every row keeps its best top_k, all identical to it (score 1.0)
    assert np.all(mined.scores == 1.0)


def test_identical_texts_are_encoded_once_and_score_one(fake_encoder: FakeEncoder) -> None:
    texts = ["How do I bake bread?", "how do  I bake BREAD?", "Where is Paris?", "How do I bake bread?"]
    mined = mine_texts(Embedder(fake_encoder), texts, rule=0.99)
    encoded = [text for batch in fake_encoder.calls for text in batch]
    assert sorted(encoded) == sorted(["How do I bake bread?", "Where is Paris?"])
    pairs = {(int(a), int(b)): float(s) for a, b, s in zip(mined.left, mined.right, mined.scores, strict=True)}
    assert pairs == {(0, 1): 1.0, (0, 3): 1.0, (1, 3): 1.0}
    assert normalize_text(" A  b\tC ") == "a b c"


def test_pairs_frame_orders_and_names_columns(fake_encoder: FakeEncoder) -> None:
    texts = ["red apple pie recipe", "green tea benefits", "recipe for red apple pie", "benefits of green tea"]
    mined = mine_texts(Embedder(fake_encoder), texts, rule=0.5)
    frame = mined.to_frame(["a", "b", "c", "d"], texts)
    assert list(frame.columns) == ["score", "id_a", "question_a", "id_b", "question_b"]
    assert set(zip(frame.id_a, frame.id_b, strict=True)) == {("a", "c"), ("b", "d")}
    assert frame.score.is_monotonic_decreasing
    assert mined.to_frame([10, 20, 30, 40], texts).id_a.dtype == np.int64


def test_pairs_frames_in_chunks_join_to_the_whole_frame(fake_encoder: FakeEncoder) -> None:
    texts = ["red apple pie", "red apple pie recipe", "apple pie red", "green tea", "green tea benefits"]
    mined = mine_texts(Embedder(fake_encoder), texts, rule=0.3)
    assert len(mined) > 2
    chunks = list(mined.frames([1, 2, 3, 4, 5], texts, rows=2))
    assert [len(chunk) for chunk in chunks] == [2] * (len(mined) // 2) + [len(mined) % 2] * (len(mined) % 2)
    pd.testing.assert_frame_equal(pd.concat(chunks), mined.to_frame([1, 2, 3, 4, 5], texts))
    [empty] = list(mined.take(slice(0, 0)).frames([1, 2, 3, 4, 5], texts))
    assert list(empty.columns) == ["score", "id_a", "question_a", "id_b", "question_b"] and len(empty) == 0


def test_pruning_parts_of_the_hits_first_keeps_the_same_pairs() -> None:
    """How the Ray engine merges its cells' pairs: `top_k_pairs` of each part, then of what is left, with the
    parts' truncated rows added, is `top_k_pairs` of all the hits at once."""
    from dupfind.pairs.mining import top_k_pairs

    rng = np.random.default_rng(3)
    left = rng.integers(0, 60, 3000)
    right = rng.integers(0, 60, 3000)
    keep = left < right
    keys = np.unique(left[keep] * 100 + right[keep])
    left, right = keys // 100, keys % 100
    scores = rng.random(len(keys)).astype(np.float32)
    whole, whole_truncated = top_k_pairs([(left, right, scores)], 4)
    parts = [top_k_pairs([(left[i::5], right[i::5], scores[i::5])], 4) for i in range(5)]
    merged, truncated = top_k_pairs(((part.left, part.right, part.scores) for part, _ in parts), 4)
    truncated = np.union1d(truncated, np.concatenate([rows for _, rows in parts]))
    np.testing.assert_array_equal(whole.left, merged.left)
    np.testing.assert_array_equal(whole.right, merged.right)
    np.testing.assert_array_equal(whole.scores, merged.scores)
    np.testing.assert_array_equal(whole_truncated, truncated)


@pytest.mark.parametrize("index", ["exact", "ann"])
def test_mining_reports_its_progress_to_the_end(index: str) -> None:
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(3000, 16)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    seen: list[tuple[int, int]] = []
    mine_grouped(rows, np.arange(len(rows)), 0.9, 5, index, lambda done, total: seen.append((done, total)))
    assert len(seen) > 1 and sum(done for done, _ in seen) == len(rows)
    assert {total for _, total in seen} == {len(rows)}
