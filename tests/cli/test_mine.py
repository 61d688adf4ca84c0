"""`dupfind mine` through Typer's runner, with the fake encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from dupfind.cli import app
from tests.cli.runner import runner
from tests.conftest import FakeEncoder

QUESTIONS = [
    "How do I reset my password?",
    "What is the capital of France?",
    "how do I reset my password",
    "Best way to learn Spanish quickly?",
    "What's the best way to learn Spanish quickly?",
    "",
    "Why is the sky blue?",
]


@pytest.fixture
def questions_csv(tmp_path: Path) -> Path:
    path = tmp_path / "questions.csv"
    pd.DataFrame({"id": [f"q{i}" for i in range(len(QUESTIONS))], "question": QUESTIONS}).to_csv(path, index=False)
    return path


def mine(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["mine", *args])
    return result.exit_code, result.stdout, result.stderr


def test_mine_prints_jsonl_when_piped(use_fake_encoder: FakeEncoder, questions_csv: Path) -> None:
    code, out, err = mine(str(questions_csv), "--id-col", "id", "-t", "0.6")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(row["id_a"], row["id_b"]) for row in rows] == [("q0", "q2"), ("q3", "q4")]
    assert rows[0]["score"] > 0.99
    assert set(rows[0]) == {"score", "id_a", "question_a", "id_b", "question_b"}
    assert "skipped 1 blank" in err and "2 pairs" in err


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "json", "parquet"])
def test_output_files_round_trip(use_fake_encoder: FakeEncoder, questions_csv: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"pairs.{fmt}"
    code, stdout, err = mine(str(questions_csv), "-t", "0.6", "-o", str(out))
    assert code == 0, err
    assert stdout == ""
    read = {
        "csv": pd.read_csv,
        "tsv": lambda p: pd.read_csv(p, sep="\t"),
        "jsonl": lambda p: pd.read_json(p, lines=True),
        "json": pd.read_json,
        "parquet": pd.read_parquet,
    }[fmt]
    frame = read(out)
    assert list(frame.columns) == ["score", "id_a", "question_a", "id_b", "question_b"]
    assert frame[["id_a", "id_b"]].values.tolist() == [[1, 3], [4, 5]]


def test_folder_output_is_parquet_parts_replaced_whole(
    use_fake_encoder: FakeEncoder, questions_csv: Path, tmp_path: Path
) -> None:
    single, folder = tmp_path / "pairs.parquet", tmp_path / "pairs"
    assert mine(str(questions_csv), "-t", "0.6", "-o", str(single))[0] == 0
    code, stdout, err = mine(str(questions_csv), "-t", "0.6", "-o", f"{folder}/")
    assert code == 0, err
    assert stdout == "" and [path.name for path in folder.iterdir()] == ["part-00000.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(folder), pd.read_parquet(single))
    code, _, err = mine(str(questions_csv), "-t", "0.99", "-o", str(folder))  # an existing folder: replaced
    assert code == 0, err
    assert len(pd.read_parquet(folder)) == 1 and [path.name for path in folder.iterdir()] == ["part-00000.parquet"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["pairs", "pairs.parquet", "questions.csv"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "{tmp}/"], "holds questions.csv, not only Parquet parts"),
        (["-o", "{tmp}/new/", "--format", "csv"], "a folder is written as Parquet parts; use --format parquet"),
        (["-o", "{tmp}/no/such/"], "the folder {tmp}/no does not exist"),
    ],
)
def test_folder_output_errors(
    use_fake_encoder: FakeEncoder, questions_csv: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    code, _, err = mine(str(questions_csv), *[arg.replace("{tmp}", str(tmp_path)) for arg in args])
    assert code == 2 and message.replace("{tmp}", str(tmp_path)) in err
    assert use_fake_encoder.calls == [] and [path.name for path in tmp_path.iterdir()] == ["questions.csv"]


def test_limit_and_table_format(use_fake_encoder: FakeEncoder, questions_csv: Path) -> None:
    code, out, _ = mine(str(questions_csv), "-t", "0.6", "--limit", "1", "--format", "csv")
    assert code == 0
    assert len(pd.read_csv(__import__("io").StringIO(out))) == 1
    code, out, _ = mine(str(questions_csv), "-t", "0.6", "--format", "table")
    assert code == 0 and "Duplicate pairs" in out and "Spanish" in out


def test_stdin_text(use_fake_encoder: FakeEncoder) -> None:
    result = runner.invoke(app, ["mine", "-", "--format-in", "txt", "-t", "0.6"], input="\n".join(QUESTIONS))
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 2


def test_top_k_truncation_is_reported(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    path = tmp_path / "same.txt"
    path.write_text("\n".join(f"red apple pie number {i}" for i in range(6)), encoding="utf-8")
    code, _, err = mine(str(path), "-t", "0.1", "--top-k", "2")
    assert code == 0 and "more than 2 neighbours" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv"], "missing.csv: no such file"),
        (["{csv}", "--text-col", "nope"], "no column 'nope'"),
        (["{csv}", "--threshold", "1.5"], "--threshold must be between -1 and 1"),
        (["{csv}", "--model", "/no/such/model"], "model directory '/no/such/model' does not exist"),
        (["{csv}", "-o", "out.weird"], "cannot tell the output format"),
        (["{csv}", "--format-in", "xml"], "unknown input format 'xml'"),
    ],
)
def test_errors_are_one_line_exit_2_no_output(
    use_fake_encoder: FakeEncoder,
    questions_csv: Path,
    tmp_path: Path,
    args: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    before = set(tmp_path.iterdir())
    code, out, err = mine(*[arg.replace("{csv}", str(questions_csv)) for arg in args])
    assert code == 2
    assert out == ""
    assert err.startswith("dupfind: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert set(tmp_path.iterdir()) == before


def test_empty_input_is_an_error(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    code, _, err = mine(str(path))
    assert code == 2 and "empty" in err


def test_verbose_prints_the_time_of_each_stage_on_stderr(use_fake_encoder: FakeEncoder, questions_csv: Path) -> None:
    result = runner.invoke(app, ["-v", "mine", str(questions_csv), "-t", "0.9"])
    assert result.exit_code == 0, result.stderr
    stages = [line.split(": ")[1] for line in result.stderr.splitlines() if line.endswith(" s")]
    assert stages == ["read", "load model", "count tokens", "encode and mine", "write"]
    quiet = runner.invoke(app, ["mine", str(questions_csv), "-t", "0.9"])
    assert quiet.stdout == result.stdout and not any(line.endswith(" s") for line in quiet.stderr.splitlines())


def test_each_question_is_tokenised_once(
    use_fake_encoder: FakeEncoder, questions_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted: list[str] = []
    count_tokens = use_fake_encoder.count_tokens
    monkeypatch.setattr(use_fake_encoder, "count_tokens", lambda texts: counted.extend(texts) or count_tokens(texts))
    code, _, err = mine(str(questions_csv), "-t", "0.6", "--batch-size", "2", "--no-cache")
    assert code == 0, err
    assert len(use_fake_encoder.calls) == 3  # 6 questions in batches of 2: sorted by their token counts
    assert sorted(counted) == sorted(text for text in QUESTIONS if text)
