"""`dupfind train` and dupfind.quality.training, with a tiny randomly initialised model (a few seconds)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dupfind.cli import app
from dupfind.quality.calibration import thresholds_from_holdout
from dupfind.quality.training.splits import read_pairs, split_holdout
from dupfind.thresholds import Thresholds
from dupfind.vectors.model import builtin_model_dir

runner = CliRunner()
TOPICS = ["python", "paris", "guitar", "taxes", "running", "coffee", "chess", "linux", "stocks", "bread"]


def make_pairs(per_topic: int = 4) -> pd.DataFrame:
    """Duplicates phrase the same topic twice; non-duplicates pair two topics."""
    rows = []
    for t, topic in enumerate(TOPICS):
        other = TOPICS[(t + 1) % len(TOPICS)]
        for i in range(per_topic):
            rows.append((f"How do I learn {topic} fast {i}?", f"What is the quickest way to learn {topic} {i}?", 1))
            rows.append((f"Is {topic} hard {i}?", f"Why is {other} popular {i}?", 0))
    return pd.DataFrame(rows, columns=["question1", "question2", "is_duplicate"])


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-layer BERT with 32 hidden units and the built-in model's tokenizer, as a sentence-transformers dir."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    root = tmp_path_factory.mktemp("tiny")
    tokenizer = AutoTokenizer.from_pretrained(str(builtin_model_dir()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(root / "bert")
    tokenizer.save_pretrained(root / "bert")
    transformer = Transformer(str(root / "bert"), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, Pooling(32, "mean")], device="cpu")
    model.save_pretrained(str(root / "model"))
    return root / "model"


@pytest.fixture
def pairs_csv(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.csv"
    make_pairs().to_csv(path, index=False)
    return path


def train(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["train", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.slow  # runs sentence-transformers' trainer (a tiny model, but a real training loop)
@pytest.mark.parametrize("recipe", ["seed", "best"])
def test_train_writes_a_loadable_calibrated_model(
    tiny_model: Path, pairs_csv: Path, tmp_path: Path, recipe: str
) -> None:
    from dupfind.thresholds import load_thresholds
    from dupfind.vectors.backends import load_encoder
    from dupfind.vectors.encoding import encode
    from dupfind.vectors.model import resolve_model

    out = tmp_path / "trained"
    code, stdout, stderr = train(
        "--pairs",
        str(pairs_csv),
        "-o",
        str(out),
        "--model",
        str(tiny_model),
        "--recipe",
        recipe,
        "--pairs-per-batch",
        "8",
        "--holdout",
        "0.25",
        "-q",
    )
    assert code == 0, stderr
    assert stdout == ""
    assert not (tmp_path / "trained.tmp").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["pairs.csv", "trained"]
    thresholds = json.loads((out / "dupfind.json").read_text())
    assert -1 <= thresholds["pair_threshold"] <= 1 and -1 <= thresholds["mining_threshold"] <= 1
    assert load_thresholds(resolve_model(str(out))).pair == thresholds["pair_threshold"]
    card = (out / "README.md").read_text()
    assert f"--recipe {recipe}" in card and "| before (base model) | after |" in card and "learning_rate" in card
    embeddings = encode(load_encoder(str(out)), ["How do I learn python?", "Why is chess popular?"])
    assert embeddings.shape == (2, 32)
    assert np.isfinite(embeddings).all()


def test_refuses_a_non_empty_output_without_force(pairs_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, stderr = train("--pairs", str(pairs_csv), "-o", str(out))
    assert code == 2
    assert "not empty" in stderr and "--force" in stderr
    assert (out / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("command", ["train", "train-reranker"])
def test_an_output_folder_that_cannot_be_written_fails_before_training(
    pairs_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes in a read-only folder")
    trained: list[object] = []
    monkeypatch.setattr("dupfind.quality.training.trainer.train", lambda *args, **kwargs: trained.append(args))
    monkeypatch.setattr("dupfind.quality.training.reranker.train_reranker", lambda *a, **k: trained.append(a))
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    result = runner.invoke(app, [command, "--pairs", str(pairs_csv), "-o", str(folder / "model")])
    assert result.exit_code == 2 and result.stderr.startswith(f"dupfind: error: {folder / 'model'}: cannot write")
    assert trained == [] and list(folder.iterdir()) == []


def test_missing_columns_and_bad_labels_are_one_line_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    make_pairs().drop(columns="is_duplicate").to_csv(missing, index=False)
    code, _, stderr = train("--pairs", str(missing), "-o", str(tmp_path / "a"))
    assert code == 2 and "no column 'is_duplicate'" in stderr

    bad = tmp_path / "bad.csv"
    make_pairs().assign(is_duplicate=[0.7] * 80).to_csv(bad, index=False)
    code, _, stderr = train("--pairs", str(bad), "-o", str(tmp_path / "b"))
    assert code == 2 and "must hold 0 or 1" in stderr

    code, _, stderr = train("--pairs", str(bad), "-o", str(tmp_path / "c"), "--recipe", "fancy")
    assert code == 2 and "unknown recipe 'fancy'" in stderr


def test_read_pairs_accepts_boolean_labels_and_drops_blank_questions(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    pd.DataFrame({"q1": ["a?", " ", "c?"], "q2": ["b?", "x?", "d?"], "dup": ["True", "0", "false"]}).to_csv(
        path, index=False
    )
    pairs = read_pairs(str(path), ("q1", "q2", "dup"))
    assert pairs.to_dict("list") == {"sentence1": ["a?", "c?"], "sentence2": ["b?", "d?"], "label": [1, 0]}


def test_holdout_shares_no_question_with_training() -> None:
    pairs = read_pairs_frame(make_pairs(per_topic=6))
    chained = pd.DataFrame({"sentence1": ["x?", "y?"], "sentence2": ["y?", "z?"], "label": [1, 0]})
    pairs = pd.concat([pairs, chained], ignore_index=True)
    train_part, held = split_holdout(pairs, 0.2, seed=1)
    assert len(train_part) + len(held) == len(pairs)
    assert 0.15 * len(pairs) <= len(held) <= 0.35 * len(pairs)
    questions = lambda frame: set(frame["sentence1"]) | set(frame["sentence2"])  # noqa: E731
    assert not questions(train_part) & questions(held)


def read_pairs_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns={"question1": "sentence1", "question2": "sentence2", "is_duplicate": "label"})


def test_mining_threshold_keeps_the_base_models_offset_from_the_pair_threshold() -> None:
    expected = Thresholds(pair=0.70, mining=pytest.approx(0.749))
    assert thresholds_from_holdout(0.70, Thresholds(pair=0.744, mining=0.793)) == expected
    assert thresholds_from_holdout(0.70, Thresholds(pair=0.5, mining=0.9)).mining == 1.0


def test_a_failed_run_leaves_no_temporary_directory(tmp_path: Path) -> None:
    pairs = tmp_path / "few.csv"
    make_pairs().head(4).to_csv(pairs, index=False)
    code, _, stderr = train("--pairs", str(pairs), "-o", str(tmp_path / "out"))
    assert code == 2 and "too few pairs" in stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["few.csv"]


class FixedEncoder:
    """Stands in for a SentenceTransformer: each text's embedding is looked up in a table."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def encode(self, texts: list[str], **_: object) -> np.ndarray:
        rows = np.array([self.vectors[text] for text in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_hard_negatives_prefer_labels_then_close_questions_outside_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    from dupfind.quality.training import negatives as training

    monkeypatch.setattr(training, "HARD_NEGATIVE_CHOICES", 1)  # always the nearest eligible question

    pairs = pd.DataFrame(
        {
            "sentence1": ["a", "a", "b", "d", "g"],
            "sentence2": ["b", "c", "c", "e", "h"],
            "label": [1, 1, 1, 0, 1],
        }
    )
    vectors = {
        "a": [1.0, 0.0, 0.0],
        "b": [0.9, 0.1, 0.0],
        "c": [1.0, 0.02, 0.0],  # a's duplicate (through b), closer to a than b is
        "d": [0.0, 1.0, 0.0],
        "e": [0.0, 0.0, 1.0],
        "f": [0.8, 0.3, 0.0],  # near a, in no duplicate pair: the hard negative
        "g": [0.9, 0.12, 0.0],  # nearer a than f, but too close to a's positive b to trust as a negative
        "h": [0.0, 0.0, 1.0],
    }
    model = FixedEncoder(vectors)
    frame = pd.concat([pairs, pd.DataFrame({"sentence1": ["f"], "sentence2": ["e"], "label": [0]})], ignore_index=True)
    anchors, positives = ["a", "d", "g"], ["b", "f", "h"]
    negatives = training.hard_negatives(frame, anchors, positives, model, seed=0)  # type: ignore[arg-type]
    assert negatives[0] == "f"  # not c (same cluster), not g (within the margin of b's score)
    assert negatives[1] == "e"  # d is labeled not a duplicate of e
    assert negatives[2] == "e"  # the only question scoring below g's positive h, outside g's cluster


@pytest.mark.parametrize("recipe", ["seed", "best"])
def test_the_losses_encode_a_batch_in_bounded_mini_batches_with_the_same_gradients(
    tiny_model: Path, recipe: str
) -> None:
    """Each loss of a recipe encodes at most `MINI_BATCH` questions at once with gradients (what bounds training
    memory: train --recipe best peaked at 8.5 GB on a batch of 128 long pairs) and gives the loss and gradients of
    the whole batch at once."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import losses

    from dupfind.quality.training.losses import MINI_BATCH, training_losses
    from dupfind.quality.training.recipes import RECIPES

    model = SentenceTransformer(str(tiny_model), device="cpu")
    model.eval()  # no dropout: a loss computed in mini-batches sees the very same embeddings
    sizes: list[int] = []
    model[0].register_forward_pre_hook(
        lambda module, args, kwargs: sizes.append(len(args[0]["input_ids"])) if torch.is_grad_enabled() else None,
        with_kwargs=True,
    )
    pairs = make_pairs(per_topic=5)  # 100 pairs: more than three mini-batches
    first, second = pairs["question1"].tolist(), pairs["question2"].tolist()
    columns = {"labeled": [first, second], "duplicates": [first, second, second[::-1]]}
    chosen = RECIPES[recipe]
    reference = {
        "labeled": losses.OnlineContrastiveLoss(model, margin=0.5)
        if chosen.labeled_loss == "OnlineContrastiveLoss"
        else losses.CosineSimilarityLoss(model),
        "duplicates": losses.MultipleNegativesRankingLoss(
            model, scale=20.0, directions=("query_to_doc", "doc_to_query") if chosen.symmetric else ("query_to_doc",)
        ),
    }
    labels = torch.tensor(pairs["is_duplicate"].to_numpy(), dtype=torch.float32)

    def loss_and_gradients(loss: torch.nn.Module, texts: list[list[str]]) -> tuple[float, list[torch.Tensor]]:
        model.zero_grad()
        value = loss([model.tokenize(column) for column in texts], labels)
        value.backward()
        gradients = [parameter.grad.clone() for parameter in model.parameters() if parameter.grad is not None]
        return float(value.detach()), gradients

    for name, loss in training_losses(model, chosen).items():
        sizes.clear()
        value, gradients = loss_and_gradients(loss, columns[name])
        assert 0 < max(sizes) <= MINI_BATCH, name
        sizes.clear()
        expected, expected_gradients = loss_and_gradients(reference[name], columns[name])
        assert max(sizes) > MINI_BATCH  # the reference encodes the whole batch at once
        assert value == pytest.approx(expected, rel=1e-4), name
        for got, want in zip(gradients, expected_gradients, strict=True):
            # float32 sums of mini-batches in another order: off by up to ~6e-6 on an element of ~2e-3 (seen
            # once in CI); a wrong mini-batching is off by the gradients' own size
            torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-3 * float(want.abs().max()) + 1e-6)


AMX_FLAGS = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
BF16_FLAGS = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_vnni"})  # avx512_bf16 without AMX


@pytest.mark.parametrize(
    ("features", "asked", "bf16"),
    [
        (AMX_FLAGS, "auto", True),
        (BF16_FLAGS, "auto", False),  # measured no faster there (docs/benchmarks.md)
        (frozenset({"avx2"}), "auto", False),
        (AMX_FLAGS, "fp32", False),
        (frozenset({"avx2"}), "bf16", True),
    ],
)
def test_training_runs_in_bf16_autocast_where_the_cpu_has_amx_unless_told(
    features: frozenset[str], asked: str, bf16: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import torch

    from dupfind.quality.training.fitting import training_arguments
    from dupfind.quality.training.recipes import RECIPES
    from dupfind.vectors import precision

    monkeypatch.setattr(precision, "cpu_features", lambda: features)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    arguments = training_arguments(RECIPES["best"], tmp_path, 100, "holdout_score", False, precision=asked)
    assert (arguments["bf16"], arguments["use_cpu"]) == (bf16, True)


def test_an_unknown_training_precision_is_a_one_line_error_before_loading(pairs_csv: Path, tmp_path: Path) -> None:
    code, _, stderr = train("--pairs", str(pairs_csv), "-o", str(tmp_path / "out"), "--precision", "int8")
    assert code == 2 and stderr.endswith("unknown --precision 'int8' (choose from auto, fp32, bf16)\n")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.tmp").exists()


@pytest.mark.slow  # two real (tiny) training runs, in processes of their own: library loggers write to fd 2
@pytest.mark.parametrize("command", ["train", "train-reranker"])
def test_quiet_training_prints_nothing(tiny_model: Path, pairs_csv: Path, tmp_path: Path, command: str) -> None:
    """-q: no progress bar, load report or library warning on stderr, nothing on stdout (the reports of
    transformers and sentence-transformers, and tqdm bars, used to show)."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    args = ["--pairs", str(pairs_csv), "-o", str(tmp_path / "out"), "--holdout", "0.25", "-q"]
    if command == "train":
        args += ["--model", str(tiny_model), "--pairs-per-batch", "8"]
    environment = {**os.environ, "DUPFIND_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "tests.fake_cli", command, *args],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")
