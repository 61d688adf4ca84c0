"""Evaluation and calibration: agreement with sentence-transformers' evaluators, metric edge cases, errors."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from dupfind.errors import DupfindError
from dupfind.pairs.mining import mine_embeddings
from dupfind.quality.calibration import apply, calibrate_mining, calibrate_pairs, store_calibration
from dupfind.quality.evaluation.labeled import LabeledPairs, clusters_from_frame, pairs_from_frame
from dupfind.quality.evaluation.mining import candidate_pairs, evaluate_mining, rank_candidates
from dupfind.quality.evaluation.pairs import classify, evaluate_pairs, pair_scores
from dupfind.quality.evaluation.plots import histogram
from dupfind.quality.evaluation.retrieval import evaluate_retrieval, top_neighbours
from dupfind.thresholds import Thresholds
from dupfind.vectors.embedder import Embedder
from dupfind.vectors.encoding import Embeddings, encode, normalize
from tests.conftest import QUORA, needs_quora

WORDS = [f"w{i}" for i in range(80)]


class SentenceTransformerEncoder:
    """Our encoder protocol over a SentenceTransformer, so both sides see the very same model."""

    fingerprint = "test"
    max_seq_length = 128

    def __init__(self, model: Any) -> None:
        self.model = model

    def encode_batch(self, texts: Sequence[str]) -> Embeddings:
        return np.asarray(self.model.encode(list(texts), convert_to_numpy=True), dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(text.split()) for text in texts]


@pytest.fixture(scope="module")
def tiny_model() -> Any:
    """A tiny in-memory SentenceTransformer: static random word vectors, mean-pooled. No download."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {word: i for i, word in enumerate(["[UNK]", "[PAD]", *WORDS])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    weights = np.random.default_rng(0).normal(size=(len(vocab), 24)).astype(np.float32)
    return SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=weights)], device="cpu")


def clustered_texts(clusters: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """Distinct sentences in clusters of 1 to 4: variations of one random sentence, each word kept or swapped."""
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    labels: list[int] = []
    for cluster in range(clusters):
        base = rng.choice(WORDS, size=6)
        for _ in range(int(rng.integers(1, 5))):
            text = " ".join(word if rng.random() < 0.7 else str(rng.choice(WORDS)) for word in base)
            if text not in texts:
                texts.append(text)
                labels.append(cluster)
    return texts, labels


def labeled_pairs(seed: int = 0) -> LabeledPairs:
    texts, clusters = clustered_texts(120, seed)
    rng = np.random.default_rng(seed)
    first, second, labels = [], [], []
    for i, j in itertools.combinations(range(len(texts)), 2):
        same = clusters[i] == clusters[j]
        if same or rng.random() < 0.004:
            first.append(texts[i])
            second.append(texts[j])
            labels.append(same)
    return LabeledPairs(first, second, np.array(labels, dtype=np.bool_))


def assert_close(ours: float, theirs: float, what: str) -> None:
    assert abs(ours - float(theirs)) < 1e-3, f"{what}: {ours} vs sentence-transformers {theirs}"


def check_pairs(model: Any, pairs: LabeledPairs) -> None:
    from sentence_transformers.sentence_transformer.evaluation import BinaryClassificationEvaluator
    from sklearn.metrics import roc_auc_score

    scores = pair_scores(Embedder(SentenceTransformerEncoder(model)), pairs)
    ours = evaluate_pairs(scores, pairs.labels, 0.5)
    evaluator = BinaryClassificationEvaluator(pairs.first, pairs.second, pairs.labels.astype(int).tolist())
    theirs = evaluator(model)
    for name, value in [
        ("accuracy", ours.best_accuracy.accuracy),
        ("accuracy_threshold", ours.best_accuracy.threshold),
        ("f1", ours.best_f1.f1),
        ("f1_threshold", ours.best_f1.threshold),
        ("precision", ours.best_f1.precision),
        ("recall", ours.best_f1.recall),
        ("ap", ours.average_precision),
    ]:
        assert_close(value, theirs[f"cosine_{name}"], name)
    assert_close(ours.roc_auc, roc_auc_score(pairs.labels, scores), "roc_auc")


def check_retrieval(model: Any, texts: list[str], clusters: list[int], embeddings: Embeddings) -> None:
    """InformationRetrievalEvaluator with a score function that hides each query's own row, as we do."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
    from sentence_transformers.util import cos_sim

    ids = [f"q{i:05d}" for i in range(len(texts))]
    members: dict[int, set[str]] = {}
    for qid, cluster in zip(ids, clusters, strict=True):
        members.setdefault(cluster, set()).add(qid)
    relevant = {qid: members[cluster] - {qid} for qid, cluster in zip(ids, clusters, strict=True)}
    rows = [i for i, qid in enumerate(ids) if relevant[qid]]

    def cosine_without_self(queries: torch.Tensor, corpus: torch.Tensor) -> torch.Tensor:
        scores = cos_sim(queries, corpus)
        scores[torch.arange(len(rows)), torch.tensor(rows)] = -10.0
        return scores

    evaluator = InformationRetrievalEvaluator(
        dict(zip(ids, texts, strict=True)),
        dict(zip(ids, texts, strict=True)),
        relevant,
        score_functions={"cosine": cosine_without_self},
        write_csv=False,
    )
    theirs = evaluator(model)
    ours = evaluate_retrieval(embeddings, np.array(clusters, dtype=np.int64))
    assert ours.queries == len(rows)
    for name, value in ours.metrics.items():
        assert_close(value, theirs[f"cosine_{name}"], name)


def check_mining(model: Any, texts: list[str], clusters: list[int], embeddings: Embeddings, top_k: int) -> None:
    from sentence_transformers.sentence_transformer.evaluation import ParaphraseMiningEvaluator

    ids = [f"q{i}" for i in range(len(texts))]
    gold = [(ids[i], ids[j]) for i, j in itertools.combinations(range(len(ids)), 2) if clusters[i] == clusters[j]]
    evaluator = ParaphraseMiningEvaluator(dict(zip(ids, texts, strict=True)), gold, top_k=top_k, write_csv=False)
    theirs = evaluator(model)
    ours = rank_candidates(embeddings, np.array(clusters, dtype=np.int64), top_k)
    assert ours.gold_pairs == len(gold)
    for name, value in [
        ("f1", ours.best_f1.f1),
        ("precision", ours.best_f1.precision),
        ("recall", ours.best_f1.recall),
        ("threshold", ours.best_f1.threshold),
        ("average_precision", ours.average_precision),
    ]:
        assert_close(value, theirs[name], name)


def test_pairs_agree_with_binary_classification_evaluator(tiny_model: Any) -> None:
    check_pairs(tiny_model, labeled_pairs())


def test_retrieval_agrees_with_information_retrieval_evaluator(tiny_model: Any) -> None:
    texts, clusters = clustered_texts(80, seed=1)
    check_retrieval(tiny_model, texts, clusters, encode(SentenceTransformerEncoder(tiny_model), texts))


@pytest.mark.parametrize("top_k", [1, 3, 10])
def test_mining_agrees_with_paraphrase_mining_evaluator(tiny_model: Any, top_k: int) -> None:
    texts, clusters = clustered_texts(80, seed=2)
    check_mining(tiny_model, texts, clusters, encode(SentenceTransformerEncoder(tiny_model), texts), top_k)


@pytest.fixture(scope="module")
def real_model() -> Any:
    from dupfind.vectors.backends.torch_backend import TorchEncoder
    from dupfind.vectors.model import resolve_model

    return TorchEncoder(resolve_model(None)).model


@pytest.mark.slow
@needs_quora()
def test_real_model_agrees_on_quora_pairs(real_model: Any) -> None:
    frame = pd.read_csv(QUORA / "dev-pairs.csv", nrows=150, dtype=str, keep_default_na=False)
    check_pairs(real_model, pairs_from_frame("dev-pairs", frame))


@pytest.mark.slow
@needs_quora()
def test_real_model_agrees_on_quora_clusters(real_model: Any) -> None:
    frame = pd.read_csv(QUORA / "dev-questions.csv", nrows=200, dtype=str, keep_default_na=False)
    clustered = clusters_from_frame("dev-questions", frame)
    embeddings = encode(SentenceTransformerEncoder(real_model), clustered.texts)
    check_retrieval(real_model, clustered.texts, clustered.clusters.tolist(), embeddings)
    check_mining(real_model, clustered.texts, clustered.clusters.tolist(), embeddings, top_k=5)


def test_classify_counts() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.2], dtype=np.float32)
    labels = np.array([True, False, True, False])
    result = classify(scores, labels, 0.75)
    assert (result.accuracy, result.precision, result.recall) == (0.5, 0.5, 0.5)
    assert result.f1 == pytest.approx(0.5)
    assert classify(scores, labels, 0.95).f1 == 0.0


def test_thresholds_are_midpoints_and_ties_stay_together() -> None:
    scores = np.array([0.9, 0.8, 0.8, 0.4, 0.1], dtype=np.float32)
    labels = np.array([True, True, False, True, False])
    report = evaluate_pairs(scores, labels, 0.5)
    assert report.best_f1.threshold == pytest.approx(0.25)
    assert report.best_f1.f1 == pytest.approx(6 / 7)
    assert report.best_accuracy.threshold == pytest.approx(0.25)
    assert report.at_threshold.threshold == 0.5


def test_best_accuracy_can_be_predicting_no_duplicate() -> None:
    scores = np.array([0.9, 0.5, 0.4, 0.3], dtype=np.float32)
    labels = np.array([False, True, False, False])
    report = evaluate_pairs(scores, labels, 0.5)
    assert report.best_accuracy.accuracy == 0.75
    assert report.best_accuracy.threshold > 0.9


def test_average_precision_and_auc_agree_with_sklearn_under_ties() -> None:
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(3)
    labels = rng.random(500) < 0.3
    scores = np.round(rng.random(500) * 0.5 + labels * 0.3, 1).astype(np.float32)
    report = evaluate_pairs(scores, labels, 0.5)
    assert report.average_precision == pytest.approx(average_precision_score(labels, scores))
    assert report.roc_auc == pytest.approx(roc_auc_score(labels, scores))


def random_embeddings(n: int, seed: int = 0) -> Embeddings:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n // 3, 16))
    return normalize(centres[rng.integers(0, len(centres), n)] + 0.5 * rng.normal(size=(n, 16)))


def test_top_neighbours_exclude_self_and_match_brute_force(monkeypatch: pytest.MonkeyPatch) -> None:
    embeddings = random_embeddings(120)
    full = embeddings @ embeddings.T
    np.fill_diagonal(full, -np.inf)
    expected = np.argsort(-full, axis=1, kind="stable")[:, :7]
    monkeypatch.setattr("dupfind.pairs.search._BLOCK_BYTES", 4 * 120 * 10)  # blocks of 10 queries
    indices, scores = top_neighbours(embeddings, 7)
    assert np.array_equal(indices, expected)
    assert np.allclose(scores, np.take_along_axis(full, expected, axis=1))
    rows = np.array([5, 0, 99])
    everything = np.argsort(-full, axis=1, kind="stable")[rows, :119]
    assert np.array_equal(top_neighbours(embeddings, 500, rows)[0], everything)


def test_candidates_at_a_threshold_are_what_mine_finds() -> None:
    embeddings = random_embeddings(200, seed=4)
    candidates = candidate_pairs(embeddings, top_k=4)
    mined = mine_embeddings(embeddings, 0.6, top_k=4)
    keep = candidates.scores >= 0.6
    assert set(zip(candidates.left[keep].tolist(), candidates.right[keep].tolist(), strict=True)) == set(
        zip(mined.left.tolist(), mined.right.tolist(), strict=True)
    )
    assert np.all(np.diff(candidates.scores) <= 0)
    assert len(set(zip(candidates.left.tolist(), candidates.right.tolist(), strict=True))) == len(candidates)


def test_mining_report_at_threshold_counts_gold_pairs() -> None:
    embeddings = normalize(np.array([[1, 0], [1, 0.05], [0, 1], [0.05, 1], [1, 1]], dtype=np.float32))
    clusters = np.array([0, 0, 1, 1, 2])
    report = evaluate_mining(embeddings, clusters, threshold=0.99, top_k=2)
    assert report.gold_pairs == 2
    assert (report.at_threshold.pairs, report.at_threshold.precision, report.at_threshold.recall) == (2, 1.0, 1.0)
    assert report.best_f1.f1 == 1.0 and report.average_precision == 1.0


def test_retrieval_perfect_and_partial() -> None:
    embeddings = normalize(np.array([[1, 0, 0], [1, 0.1, 0], [0, 1, 0], [0.1, 1, 0.2], [0, 0, 1]], dtype=np.float32))
    report = evaluate_retrieval(embeddings, np.array([0, 0, 1, 1, 2]))
    assert report.queries == 4 and report.questions == 5
    assert report.metrics["accuracy@1"] == 1.0 and report.metrics["ndcg@10"] == pytest.approx(1.0)
    assert report.metrics["precision@3"] == pytest.approx(1 / 3)
    shuffled = evaluate_retrieval(embeddings, np.array([0, 1, 0, 1, 2]))
    assert shuffled.metrics["mrr@10"] < 1.0


def test_histogram_marks_the_threshold_between_bins() -> None:
    scores = np.array([0.1, 0.2, 0.45, 0.55, 0.9, 0.95], dtype=np.float32)
    labels = np.array([False, False, False, True, True, True])
    lines = histogram(scores, labels, 0.5, bins=10)
    marker = next(i for i, line in enumerate(lines) if "threshold 0.500" in line)
    above, below = lines[1:marker], lines[marker + 1 :]

    def counts(line: str) -> list[int]:
        return [int(token) for token in line[13:].split() if token.isdigit()]

    assert sum(counts(line)[0] for line in above) == 3 and sum(counts(line)[1] for line in above) == 0
    assert sum(counts(line)[1] for line in below) == 3 and sum(counts(line)[0] for line in below) == 0
    assert all(float(line.split("–")[0]) >= 0.5 - 1e-9 for line in above)


def test_pairs_from_frame_skips_blank_and_accepts_label_spellings() -> None:
    frame = pd.DataFrame(
        {"question1": ["a", "", "c", "d"], "question2": ["b", "x", "e", "f"], "is_duplicate": ["1", "", "0", "true"]}
    )
    pairs = pairs_from_frame("f", frame)
    assert pairs.labels.tolist() == [True, False, True] and pairs.skipped_blank == 1


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"question1": ["a"], "question2": ["b"]}), "no column 'is_duplicate'"),
        (
            pd.DataFrame({"question1": ["a", "b"], "question2": ["b", "c"], "is_duplicate": ["1", "yes"]}),
            "must hold 0 or 1; row 2 has 'yes'",
        ),
        (
            pd.DataFrame({"question1": ["a", "b"], "question2": ["b", "c"], "is_duplicate": [1, 1]}),
            "both duplicates (1) and non-duplicates (0)",
        ),
    ],
)
def test_pairs_errors(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(DupfindError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pairs_from_frame("f", frame)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"question": ["a", "b"]}), "no column 'cluster'"),
        (pd.DataFrame({"question": ["a", "b"], "cluster": ["c1", "c2"]}), "no cluster holds two or more"),
        (pd.DataFrame({"question": ["a", "b"], "cluster": ["c1", ""]}), "row 2 has no 'cluster'"),
    ],
)
def test_cluster_errors(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(DupfindError, match=message):
        clusters_from_frame("f", frame)


def test_clusters_from_frame_skips_blank_questions() -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "question": ["a", " ", "b"], "group": ["x", "y", "x"]})
    clustered = clusters_from_frame("f", frame, cluster_col="group")
    assert clustered.texts == ["a", "b"] and clustered.clusters.tolist() == [0, 0] and clustered.skipped_blank == 1


def test_calibrations_are_stored_beside_the_model_and_merged(tmp_path: Path) -> None:
    scores = np.array([0.9, 0.8, 0.3, 0.2], dtype=np.float32)
    pair = calibrate_pairs(scores, np.array([True, True, False, False]), "pairs.csv")
    assert pair.threshold == pytest.approx(0.55) and pair.f1 == 1.0
    embeddings = normalize(np.array([[1, 0], [1, 0.05], [0, 1], [0.3, 1]], dtype=np.float32))
    mining = calibrate_mining(embeddings, np.array([0, 0, 1, 2]), "questions.csv", top_k=2)
    assert mining.kind == "mining" and mining.top_k == 2 and mining.f1 == 1.0
    current = Thresholds(0.7, 0.8)
    assert apply(current, [pair]) == Thresholds(pair.threshold, 0.8)
    store_calibration(tmp_path, current, [pair])
    file = store_calibration(tmp_path, Thresholds(pair.threshold, 0.8), [mining])
    data = json.loads(file.read_text(encoding="utf-8"))
    assert data["pair_threshold"] == pair.threshold and data["mining_threshold"] == mining.threshold
    assert data["calibration"]["pair"]["source"] == "pairs.csv" and data["calibration"]["mining"]["top_k"] == 2


def test_store_calibration_in_a_read_only_folder_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    with pytest.raises(DupfindError, match="copy the model"):
        store_calibration(missing, Thresholds(0.7, 0.8), [])
