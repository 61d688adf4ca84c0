"""The re-ranker: pair scores (each distinct pair once, cached), re-ranked pairs and hits, its settings."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dupfind.errors import DupfindError
from dupfind.pairs.mining import MinedPairs
from dupfind.pairs.rerank import Reranker
from dupfind.pairs.search import Neighbours
from dupfind.thresholds import IDENTITY, Fusion, RerankSettings, Rule, Thresholds, read_settings
from dupfind.vectors.backends import load_pair_scorer
from dupfind.vectors.model import ModelRef, resolve_reranker
from dupfind.vectors.pair_scorer import pair_keys, score_cache
from tests.conftest import FAKE_RERANK_SETTINGS, FakePairScorer

SETTINGS = RerankSettings(
    Thresholds(0.75, 0.7), {"abc": Thresholds(0.5, 0.6)}, Thresholds(0.2, 0.1), Fusion(8.0, 0.5, -6.0)
)


def test_pair_keys_tell_both_texts_apart() -> None:
    keys = pair_keys(["ab", "a", "ab"], ["c", "bc", "c"])
    assert (keys[0] != keys[1]).any() and (keys[0] == keys[2]).all()
    assert (pair_keys(["x"], ["y"]) != pair_keys(["y"], ["x"])).any()  # ordered pairs


def test_score_each_distinct_pair_once_in_order(fake_pair_scorer: FakePairScorer) -> None:
    reranker = Reranker(fake_pair_scorer, batch_size=2)
    first = ["red apple pie", "java string to int", "red apple pie"]
    second = ["red apple pie", "java int to string", "red apple pie"]
    scores = reranker.cross_scores(first, second)
    assert scores[0] == scores[2] == 1.0 and scores[1] <= 0.5
    scored = [pair for call in fake_pair_scorer.calls for pair in call]
    assert len(scored) == 2 and max(len(call) for call in fake_pair_scorer.calls) <= 2


def test_scores_are_cached(tmp_path: Path, fake_pair_scorer: FakePairScorer) -> None:
    reranker = Reranker(fake_pair_scorer, score_cache(tmp_path))
    first, second = ["a b c", "d e f"], ["a b c", "f e d"]
    expected = reranker.cross_scores(first, second)
    fake_pair_scorer.calls.clear()
    again = reranker.cross_scores([*first, "g h"], [*second, "h g"])
    np.testing.assert_array_equal(again[:2], expected)
    assert fake_pair_scorer.calls == [[("g h", "h g")]]


def test_rerank_keeps_pairs_above_the_threshold_ranked_by_it(fake_pair_scorer: FakePairScorer) -> None:
    texts = ["convert int to string", "convert string to int", "Convert int to string!", "other words here"]
    pairs = MinedPairs(np.array([0, 0, 1]), np.array([1, 2, 3]), np.array([0.99, 0.98, 0.2], dtype=np.float32))
    kept = Reranker(fake_pair_scorer).rerank(pairs, texts, 0.75)
    assert list(zip(kept.left.tolist(), kept.right.tolist(), strict=True)) == [(0, 2)]
    assert kept.scores.tolist() == pytest.approx([0.98]) and kept.rerank_scores is not None
    frame = kept.to_frame(["a", "b", "c", "d"], texts)
    assert list(frame.columns) == ["score", "rerank_score", "id_a", "question_a", "id_b", "question_b"]
    with pytest.raises(DupfindError, match="between 0 and 1"):
        Reranker(fake_pair_scorer).rerank(pairs, texts, 1.5)


def test_rerank_neighbours_reorders_each_query(fake_pair_scorer: FakePairScorer) -> None:
    corpus = ["b a", "a b", "c d"]
    found = Neighbours(np.array([[0, 1, 2]]), np.array([[0.99, 0.98, 0.1]], dtype=np.float32))
    ranked = Reranker(fake_pair_scorer).rerank_neighbours(found, ["a b"], corpus)
    assert ranked.rows.tolist() == [[1, 0, 2]] and ranked.scores.tolist()[0][0] == pytest.approx(0.98)
    frame = replace(ranked, rule=Rule(0.5, 0.75)).to_frame(["x", "y", "z"], corpus)
    assert frame["duplicate"].tolist() == [True, False, False]


def test_settings_round_trip_and_fallback(tmp_path: Path) -> None:
    (tmp_path / "dupfind.json").write_text(json.dumps({"rerank": SETTINGS.to_json()}))
    assert read_settings(ModelRef("x", tmp_path)) == SETTINGS
    assert SETTINGS.candidates_for("abc", Thresholds(0.9, 0.9)) == Thresholds(0.5, 0.6)
    assert SETTINGS.candidates_for("other", Thresholds(0.8, 0.9)) == Thresholds(pytest.approx(0.6), pytest.approx(0.8))


def test_a_bi_encoder_is_not_a_reranker(tmp_path: Path) -> None:
    (tmp_path / "dupfind.json").write_text(json.dumps({"pair_threshold": 0.7, "mining_threshold": 0.8}))
    with pytest.raises(DupfindError, match="not a dupfind re-ranker"):
        read_settings(ModelRef("x", tmp_path))
    (tmp_path / "dupfind.json").write_text(json.dumps({"rerank": {"pair": "high"}}))
    with pytest.raises(DupfindError, match="not a re-ranker's settings"):
        read_settings(ModelRef("x", tmp_path))


def test_load_pair_scorer_uses_the_backends_pair_scorer(use_fake_reranker: Path) -> None:
    assert isinstance(load_pair_scorer(str(use_fake_reranker)), FakePairScorer)
    assert read_settings(resolve_reranker(str(use_fake_reranker))).thresholds.pair == FAKE_RERANK_SETTINGS["pair"]


def test_builtin_bi_encoder_is_not_a_reranker() -> None:
    with pytest.raises(DupfindError, match="is a bi-encoder, not a re-ranker"):
        load_pair_scorer("base")


def test_progress_counts_each_batch(fake_pair_scorer: FakePairScorer) -> None:
    calls: list[tuple[int, int]] = []
    reranker = Reranker(fake_pair_scorer, batch_size=2, progress=lambda done, total: calls.append((done, total)))
    reranker.cross_scores(["a", "b", "c"], ["d", "e", "f"])
    assert calls == [(2, 3), (1, 3)]


def test_the_rerank_score_fuses_the_cosine_and_the_cross_encoders(fake_pair_scorer: FakePairScorer) -> None:
    reranker = Reranker(fake_pair_scorer, fusion=Fusion(10.0, 1.0, -9.0))
    first, second = ["a b c", "a b c"], ["a b d", "a b d"]
    cross = reranker.cross_scores(first, second)
    fused = reranker.score(first, second, np.array([0.95, 0.5], dtype=np.float32))
    logit = np.log(cross[0] / (1 - cross[0]))
    assert fused.tolist() == pytest.approx([1 / (1 + np.exp(-(9.5 + logit - 9.0))), 1 / (1 + np.exp(-(5 + logit - 9)))])
    np.testing.assert_allclose(Reranker(fake_pair_scorer).score(first, second, np.zeros(2, np.float32)), cross)
    pairs = MinedPairs(np.array([0, 0]), np.array([1, 2]), np.array([0.95, 0.5], dtype=np.float32))
    kept = reranker.rerank(pairs, ["a b c", "a b d", "a b d"], 0.0)
    assert kept.rerank_scores is not None and kept.rerank_scores.tolist() == pytest.approx(fused.tolist())
    with pytest.raises(ValueError, match="as long"):
        reranker.score(first, second, np.zeros(1, np.float32))


def test_settings_without_fusion_score_by_the_cross_encoder_alone(tmp_path: Path) -> None:
    (tmp_path / "dupfind.json").write_text(json.dumps({"rerank": FAKE_RERANK_SETTINGS}))
    assert read_settings(ModelRef("x", tmp_path)).fusion == IDENTITY
    broken = {**FAKE_RERANK_SETTINGS, "fusion": {"cosine": float("nan"), "logit": 1.0, "bias": 0.0}}
    (tmp_path / "dupfind.json").write_text(json.dumps({"rerank": broken}))
    with pytest.raises(DupfindError, match="not a re-ranker's settings"):
        read_settings(ModelRef("x", tmp_path))
