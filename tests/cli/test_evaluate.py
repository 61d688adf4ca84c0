"""`dupfind eval pairs|retrieval|mining` and `dupfind calibrate` through Typer's runner, with the fake encoder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dupfind.cli import app
from dupfind.thresholds import BUILTIN_MINING_THRESHOLD, load_thresholds
from dupfind.vectors.model import builtin_model_dir, resolve_model
from tests.conftest import FakeEncoder

runner = CliRunner()
DEFAULT_THRESHOLDS = load_thresholds(resolve_model(None))  # the default model's calibrated thresholds
PAIRS = [
    ("How do I reset my password?", "how can I reset my password", 1),
    ("How do I reset my password?", "How do I change my username?", 0),
    ("Best way to learn Spanish quickly?", "What's the best way to learn Spanish quickly?", 1),
    ("Best way to learn Spanish quickly?", "Why is the sky blue?", 0),
    ("What is the capital of France?", "Which city is the capital of France?", 1),
    ("What is the capital of France?", "What is the capital of Spain?", 0),
    ("How do I export my data to CSV?", "Can I download all my records as a CSV file?", 1),
    ("How do I export my data to CSV?", "How do I delete my account?", 0),
]
QUESTIONS = [
    ("q1", "How do I reset my password?", "c1"),
    ("q2", "how can I reset my password", "c1"),
    ("q3", "I forgot my password, how do I reset it?", "c1"),
    ("q4", "Best way to learn Spanish quickly?", "c2"),
    ("q5", "What's the best way to learn Spanish quickly?", "c2"),
    ("q6", "Why is the sky blue?", "c3"),
    ("q7", "What is the capital of France?", "c4"),
    ("q8", "Which city is the capital of France?", "c4"),
    ("q9", "How do I delete my account?", "c5"),
]


@pytest.fixture
def pairs_csv(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.csv"
    pd.DataFrame(PAIRS, columns=["question1", "question2", "is_duplicate"]).to_csv(path, index=False)
    return path


@pytest.fixture
def questions_csv(tmp_path: Path) -> Path:
    path = tmp_path / "questions.csv"
    pd.DataFrame(QUESTIONS, columns=["id", "question", "cluster"]).to_csv(path, index=False)
    return path


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A local model folder (the fake encoder ignores its weights)."""
    path = tmp_path / "model"
    path.mkdir()
    (path / "config.json").write_text("{}", encoding="utf-8")
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_eval_pairs_prints_one_json_line_when_piped(use_fake_encoder: FakeEncoder, pairs_csv: Path) -> None:
    code, out, err = run("eval", "pairs", str(pairs_csv))
    assert code == 0, err
    [line] = out.splitlines()
    report = json.loads(line)
    assert report["task"] == "pairs" and report["pairs"] == 8 and report["duplicates"] == 4
    assert report["at_threshold"]["threshold"] == DEFAULT_THRESHOLDS.pair
    assert set(report["best_f1"]) == {"threshold", "accuracy", "f1", "precision", "recall"}
    assert 0.5 <= report["average_precision"] <= 1 and 0.5 <= report["roc_auc"] <= 1
    assert "Read 8 pairs (4 duplicates)" in err


def test_eval_pairs_table_has_a_histogram_with_the_threshold(use_fake_encoder: FakeEncoder, pairs_csv: Path) -> None:
    code, out, _ = run("eval", "pairs", str(pairs_csv), "--format", "table", "-t", "0.5")
    assert code == 0
    assert "best F1" in out and "ROC-AUC" in out
    assert "threshold 0.500" in out and "█" in out


def test_eval_pairs_writes_json_to_a_file(use_fake_encoder: FakeEncoder, pairs_csv: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    code, out, _ = run("eval", "pairs", str(pairs_csv), "-o", str(report), "-t", "0.5")
    assert code == 0 and out == ""
    assert json.loads(report.read_text(encoding="utf-8"))["at_threshold"]["threshold"] == 0.5
    code, out, _ = run("eval", "pairs", str(pairs_csv), "-o", str(report), "--format", "json")
    assert code == 0 and json.loads(out) == json.loads(report.read_text(encoding="utf-8"))


def test_eval_pairs_with_other_column_names(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    pd.DataFrame(PAIRS, columns=["a", "b", "same"]).to_json(path, orient="records", lines=True)
    code, out, err = run("eval", "pairs", str(path), "--q1-col", "a", "--q2-col", "b", "--label-col", "same")
    assert code == 0, err
    assert json.loads(out)["duplicates"] == 4


def test_plot_without_matplotlib_says_how_to_get_it(
    use_fake_encoder: FakeEncoder, pairs_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = run("eval", "pairs", str(pairs_csv), "--plot", str(tmp_path / "scores.png"))
    assert code == 2 and out == ""
    assert "pip install matplotlib" in err and len(err.strip().splitlines()) == 1
    assert not use_fake_encoder.calls


def test_plot_writes_a_png(use_fake_encoder: FakeEncoder, pairs_csv: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    picture = tmp_path / "scores.png"
    code, _, err = run("eval", "pairs", str(pairs_csv), "--plot", str(picture))
    assert code == 0, err
    assert picture.read_bytes().startswith(b"\x89PNG")


def test_a_plot_to_an_open_descriptor_is_written_in_place_not_over_it(
    use_fake_encoder: FakeEncoder, pairs_csv: Path, tmp_path: Path
) -> None:
    """`--plot /dev/stdout > file` once truncated the file, losing what was written before the picture."""
    pytest.importorskip("matplotlib")
    log = tmp_path / "log"
    log.write_bytes(b"kept\n")
    with log.open("ab") as handle:
        code, _, err = run("eval", "pairs", str(pairs_csv), "--plot", f"/dev/fd/{handle.fileno()}")
    assert code == 0, err
    written = log.read_bytes()
    assert written.startswith(b"kept\n\x89PNG") and written.endswith(b"IEND\xaeB`\x82")


def test_a_plot_in_an_unknown_format_is_refused_before_encoding(
    use_fake_encoder: FakeEncoder, pairs_csv: Path, tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib")
    code, out, err = run("eval", "pairs", str(pairs_csv), "--plot", str(tmp_path / "scores.txt"))
    assert code == 2 and out == "" and not use_fake_encoder.calls
    assert "scores.txt: unknown picture format (end it in ." in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "scores.txt").exists()
    code, _, err = run("eval", "pairs", str(pairs_csv), "--plot", str(tmp_path / "scores.svg"))
    assert code == 0, err
    assert b"<svg" in (tmp_path / "scores.svg").read_bytes()


def test_eval_retrieval(use_fake_encoder: FakeEncoder, questions_csv: Path) -> None:
    code, out, err = run("eval", "retrieval", str(questions_csv))
    assert code == 0, err
    report = json.loads(out)
    assert report["questions"] == 9 and report["queries"] == 7
    for name in ("accuracy@1", "precision@3", "recall@10", "ndcg@10", "mrr@10", "map@100"):
        assert 0 <= report[name] <= 1
    assert report["accuracy@10"] == 1.0
    code, out, _ = run("eval", "retrieval", str(questions_csv), "-f", "table")
    assert code == 0 and "ndcg@10" in out and "7 queries" in out


def test_eval_mining(use_fake_encoder: FakeEncoder, questions_csv: Path) -> None:
    code, out, err = run("eval", "mining", str(questions_csv), "-t", "0.6", "--top-k", "3")
    assert code == 0, err
    report = json.loads(out)
    assert report["gold_pairs"] == 5 and report["top_k"] == 3
    assert report["at_threshold"]["threshold"] == 0.6 and report["at_threshold"]["pairs"] >= 1
    assert report["best_f1"]["f1"] >= report["at_threshold"]["f1"] - 1e-9
    code, out, _ = run("eval", "mining", str(questions_csv), "-f", "table")
    assert code == 0 and "gold pairs" in out and f"{DEFAULT_THRESHOLDS.mining:.4f}" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "pairs", "{questions}"], "no column 'question1', 'question2', 'is_duplicate'"),
        (["eval", "pairs", "{pairs}", "--label-col", "question2"], "must hold 0 or 1; row 1 has"),
        (["eval", "retrieval", "{pairs}"], "no column 'cluster'"),
        (["eval", "mining", "{questions}", "--cluster-col", "id"], "no cluster holds two or more"),
        (["eval", "mining", "{questions}", "--top-k", "0"], "--top-k must be at least 1"),
        (["eval", "pairs", "{pairs}", "--format", "csv"], "unknown report format 'csv'"),
        (["eval", "pairs", "{pairs}", "-t", "3"], "--threshold must be between -1 and 1"),
        (["eval", "pairs", "missing.csv"], "missing.csv: no such file"),
        (["calibrate"], "give a FILE, or --pairs FILE"),
        (["calibrate", "{questions}", "--kind", "pairs"], "no column 'question1'"),
        (["calibrate", "{questions}", "--kind", "nope"], "--kind must be pairs or mining"),
        (["calibrate", "{pairs}", "--pairs", "{pairs}"], "one file of pairs and one of clustered questions"),
    ],
)
def test_errors_are_one_line_exit_2(
    use_fake_encoder: FakeEncoder, pairs_csv: Path, questions_csv: Path, args: list[str], message: str
) -> None:
    args = [arg.replace("{pairs}", str(pairs_csv)).replace("{questions}", str(questions_csv)) for arg in args]
    code, out, err = run(*args)
    assert code == 2 and out == ""
    assert err.startswith("dupfind: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1


def test_calibrate_tells_a_file_it_cannot_read(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    pd.DataFrame({"question": ["a b", "c d"], "votes": [1, 2]}).to_csv(path, index=False)
    code, _, err = run("calibrate", str(path))
    assert code == 2 and "use --kind" in err


def test_calibrate_stores_thresholds_beside_the_model(
    use_fake_encoder: FakeEncoder, pairs_csv: Path, questions_csv: Path, model_dir: Path
) -> None:
    code, out, err = run("calibrate", str(pairs_csv), "--model", str(model_dir))
    assert code == 0, err
    report = json.loads(out)
    thresholds = load_thresholds(resolve_model(str(model_dir)))
    assert thresholds.pair == report["pair_threshold"] == report["calibration"]["pair"]["threshold"]
    assert thresholds.mining == BUILTIN_MINING_THRESHOLD and "mining threshold stays" in err  # a model without any
    assert report["stored"] == str(model_dir / "dupfind.json")
    code, out, err = run("calibrate", str(questions_csv), "--model", str(model_dir), "--top-k", "5")
    assert code == 0, err
    stored = json.loads((model_dir / "dupfind.json").read_text(encoding="utf-8"))
    assert stored["mining_threshold"] == json.loads(out)["mining_threshold"] != BUILTIN_MINING_THRESHOLD
    assert stored["pair_threshold"] == thresholds.pair
    assert stored["calibration"]["mining"]["top_k"] == 5 and "pair" in stored["calibration"]


def test_mine_and_compare_use_the_calibrated_thresholds(
    use_fake_encoder: FakeEncoder, pairs_csv: Path, questions_csv: Path, model_dir: Path
) -> None:
    code, out, _ = run("calibrate", "--pairs", str(pairs_csv), "--questions", str(questions_csv), "-m", str(model_dir))
    assert code == 0
    report = json.loads(out)
    assert set(report["calibration"]) == {"pair", "mining"}
    code, _, err = run("mine", str(questions_csv), "-m", str(model_dir))
    assert code == 0 and f"cosine ≥ {report['mining_threshold']:.3f}" in err
    result = runner.invoke(
        app, ["compare", "--no-rerank", "red apple", "green pear", "--format", "json", "-m", str(model_dir)]
    )
    assert json.loads(result.stdout)["threshold"] == report["pair_threshold"]


def test_calibrate_a_model_it_cannot_write_fails_before_encoding(
    use_fake_encoder: FakeEncoder, pairs_csv: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dupfind.quality.calibration.os.access", lambda path, mode: False)
    code, _, err = run("calibrate", str(pairs_csv), "--model", str(model_dir))
    assert code == 2 and "cannot write dupfind.json" in err and "--dry-run" in err
    assert not use_fake_encoder.calls
    assert run("calibrate", str(pairs_csv), "--model", str(model_dir), "--dry-run")[0] == 0


def test_calibrate_dry_run_stores_nothing(use_fake_encoder: FakeEncoder, pairs_csv: Path, model_dir: Path) -> None:
    code, out, err = run("calibrate", str(pairs_csv), "--model", str(model_dir), "--dry-run")
    assert code == 0 and "Not stored (--dry-run)" in err
    assert json.loads(out)["stored"] is None
    assert not (model_dir / "dupfind.json").exists()


def test_calibrate_the_builtin_model_prints_how_to_use_the_thresholds(
    use_fake_encoder: FakeEncoder, pairs_csv: Path, questions_csv: Path
) -> None:
    before = set(builtin_model_dir().iterdir())
    code, out, err = run("calibrate", "--pairs", str(pairs_csv), "--questions", str(questions_csv), "-f", "table")
    assert code == 0, err
    assert "not stored" in err and "--threshold" in err and "dupfind compare" in err and "dupfind mine" in err
    assert "Calibration" in out and "pair" in out and "mining" in out
    assert set(builtin_model_dir().iterdir()) == before


def test_calibrate_encodes_shared_questions_once(
    use_fake_encoder: FakeEncoder, pairs_csv: Path, questions_csv: Path
) -> None:
    code, _, _ = run("calibrate", "--pairs", str(pairs_csv), "--questions", str(questions_csv), "--dry-run")
    assert code == 0
    encoded = [text for call in use_fake_encoder.calls for text in call]
    assert len(encoded) == len(set(encoded))
