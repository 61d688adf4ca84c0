"""The re-ranker's training examples, calibration helpers, fp16 weights, and (slow) a whole short training run."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dupfind.cli import app
from dupfind.quality.training.batching import length_batches
from dupfind.quality.training.reranker import RerankerRecipe, _keeping, holdout_order_pairs, training_examples
from dupfind.quality.training.weights import store_fp16
from dupfind.vectors.embedder import Embedder
from tests.conftest import FakeEncoder

runner = CliRunner()


def _labeled() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sentence1": ["learn python fast", "paris trip cost"],
            "sentence2": ["quickest way to learn python", "why is chess popular"],
            "label": [1, 0],
        }
    )


def _clustered() -> pd.DataFrame:
    texts = [
        "learn python fast",
        "quickest way to learn python",
        "python learning fast tips",
        "learn java fast",
        "java quick learning tips",
        "held out question here",
        "held out question there",
        "bake bread at home",
    ]
    return pd.DataFrame({"question": texts, "cluster": [1, 1, 1, 2, 2, 3, 3, 4]})


def test_examples_add_cluster_positives_and_hard_negatives(fake_encoder: FakeEncoder) -> None:
    recipe = RerankerRecipe(negative_share=1.0)
    excluded = {"held out question here"}
    examples, counts = training_examples(_labeled(), _clustered(), Embedder(fake_encoder), recipe, excluded)
    assert counts["labeled"] == 2 and counts["cluster positives"] > 0 and counts["hard negatives"] > 0
    assert len(examples) == sum(counts.values())
    pairs = {frozenset(pair): label for *pair, label in examples.itertuples(index=False)}
    assert all("held out" not in text for pair in pairs for text in pair)  # its whole cluster is dropped
    cluster = dict(zip(_clustered()["question"], _clustered()["cluster"], strict=True))
    for pair, label in pairs.items():
        if len(pair) == 2 and all(text in cluster for text in pair):
            a, b = sorted(pair)
            if label == 0 and frozenset(pair) not in {frozenset(("paris trip cost", "why is chess popular"))}:
                assert cluster[a] != cluster[b]  # a hard negative is outside the anchor's cluster
    labeled = frozenset(("learn python fast", "quickest way to learn python"))
    assert list(pairs).count(labeled) == 1  # a labeled pair is not added again as a cluster positive


def test_examples_without_questions_are_the_labeled_pairs(fake_encoder: FakeEncoder) -> None:
    recipe = RerankerRecipe(order_pairs=False)
    examples, counts = training_examples(_labeled(), None, Embedder(fake_encoder), recipe, set())
    assert counts == {"labeled": 2} and sorted(examples["label"]) == [0.0, 1.0]


def test_examples_add_order_pairs_of_the_training_questions_only(fake_encoder: FakeEncoder) -> None:
    labeled = pd.DataFrame(
        {
            "sentence1": ["How do I convert an integer to a string in Java?", "Is Java better than Python?"],
            "sentence2": ["Java: int to String?", "Which is better, Chess or Ludo?"],
            "label": [1, 0],
        }
    )
    excluded = {"Is Java better than Python?"}  # a held-out question is never swapped into training
    examples, counts = training_examples(labeled, None, Embedder(fake_encoder), RerankerRecipe(), excluded)
    assert counts == {"labeled": 2, "order pairs": 2}
    pairs = {frozenset(pair): label for *pair, label in examples.itertuples(index=False)}
    swap = ("How do I convert an integer to a string in Java?", "How do I convert a string to an integer in Java?")
    assert pairs[frozenset(swap)] == 0
    assert pairs[frozenset(("Which is better, Chess or Ludo?", "Which is better, Ludo or Chess?"))] == 1
    assert not any("Python better than Java" in text for pair in pairs for text in pair)


def test_holdout_order_pairs_come_from_the_held_out_questions_and_their_clusters() -> None:
    held = pd.DataFrame({"sentence1": ["Is Java better than Python?"], "sentence2": ["Why learn Java?"], "label": [0]})
    questions = pd.DataFrame(
        {
            "question": ["Why learn Java?", "Python vs Java: which is better?", "Which is better, Chess or Ludo?"],
            "cluster": [1, 1, 2],
        }
    )
    order = holdout_order_pairs(held, questions)
    assert order["sentence1"].tolist() == ["Is Java better than Python?", "Python vs Java: which is better?"]
    assert order["label"].tolist() == [0, 1]


def test_keeping_is_the_highest_threshold_keeping_the_share() -> None:
    scores = np.linspace(0.0, 0.99, 100, dtype=np.float32)
    threshold = _keeping(scores, 0.98)
    assert np.mean(scores >= threshold) >= 0.98 and np.mean(scores >= np.nextafter(threshold, 1)) < 0.98


def test_store_fp16_halves_the_weights_and_keeps_the_mode(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    weights = {"w": torch.randn(64, 64), "ids": torch.arange(4)}
    file = tmp_path / "model.safetensors"
    save_file(weights, str(file))
    file.chmod(0o644)
    before = file.stat().st_size
    assert store_fp16(tmp_path) > 0 and file.stat().st_size < 0.6 * before
    assert stat.S_IMODE(file.stat().st_mode) == 0o644
    loaded = load_file(str(file))
    assert loaded["w"].dtype == torch.float16 and loaded["ids"].dtype == torch.int64
    assert torch.allclose(loaded["w"].float(), weights["w"], rtol=1e-3, atol=1e-3)


@pytest.mark.slow
def test_train_reranker_writes_a_calibrated_reranker(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    topics = ["python", "paris", "guitar", "taxes", "running", "coffee", "chess", "linux", "stocks", "bread"]
    rows = []
    for t, topic in enumerate(topics):
        for i in range(3):
            rows.append((f"How do I learn {topic} {i}?", f"What is the way to learn {topic} {i}?", 1))
            rows.append((f"Is {topic} hard {i}?", f"Why is {topics[(t + 1) % 10]} popular {i}?", 0))
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame(rows, columns=["question1", "question2", "is_duplicate"]).to_csv(pairs, index=False)
    out = tmp_path / "reranker"
    result = runner.invoke(app, ["train-reranker", "--pairs", str(pairs), "-o", str(out), "--holdout", "0.3", "-q"])
    assert result.exit_code == 0, result.stderr
    settings = json.loads((out / "dupfind.json").read_text())["rerank"]
    assert 0 <= settings["pair"] <= 1 and len(settings["candidates"]) == 1  # the bi-encoder it was calibrated with
    assert (out / "README.md").read_text().startswith("---") and not (out / "checkpoints").exists()
    scores = runner.invoke(
        app, ["compare", "a b", "a b", "--format", "json", "--reranker", str(out), "--backend", "onnx"]
    )
    assert 0 <= json.loads(scores.stdout)["rerank_score"] <= 1


def test_length_batches_hold_every_pair_once_in_batches_of_similar_length() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 200, 5000)
    batches = length_batches(lengths, 32, np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(5000))
    spread = np.mean([lengths[batch].max() - lengths[batch].min() for batch in batches])
    assert spread < 0.1 * (lengths.max() - lengths.min())  # a random batch spans nearly the whole range
    again = length_batches(lengths, 32, np.random.default_rng(1))
    assert all((a == b).all() for a, b in zip(batches, again, strict=True))
    assert all(len(batch) == 32 for batch in length_batches(lengths, 32, rng, drop_last=True))
