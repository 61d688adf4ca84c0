"""Every command that reads a table takes the same reader options, and says what it skipped: `eval`, `calibrate`,
`train` and `train-reranker` on labeled files, with the fake encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dupfind.cli import app
from tests.cli.test_evaluate import PAIRS, QUESTIONS
from tests.cli.test_help import command_paths
from tests.conftest import FakeEncoder

runner = CliRunner()
READER_OPTIONS = ("--format-in", "--encoding", "--delimiter", "--skip-bad-lines")


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def semicolon_file(path: Path, rows: list[tuple[object, ...]], columns: list[str]) -> Path:
    """A `;`-separated file whose header also holds a comma, so that sniffing it would split it wrongly."""
    frame = pd.DataFrame(rows, columns=columns)
    frame.to_csv(path, sep=";", index=False)
    return path


def jsonl_with_a_bad_line(path: Path, rows: list[tuple[object, ...]], columns: list[str]) -> Path:
    lines = [json.dumps(dict(zip(columns, row, strict=True))) for row in rows]
    lines.insert(2, '{"question1": "cut short')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


PAIR_COLUMNS = ["question1, first", "question2", "is_duplicate"]
PAIRS_RENAMED = ("--question1-col", "question1, first")
CLUSTER_COLUMNS = ["id", "question", "cluster"]


def test_every_command_that_reads_a_table_takes_all_the_reader_options() -> None:
    readers = []
    for path in command_paths():
        text = runner.invoke(app, [*path, "--help"], terminal_width=250).stdout
        if any(option in text for option in READER_OPTIONS):
            readers.append(path[-1])
            assert all(option in text for option in READER_OPTIONS), path
    assert {"pairs", "retrieval", "mining", "calibrate", "train", "train-reranker", "mine", "label"} <= set(readers)


def test_eval_pairs_reads_a_semicolon_file_with_delimiter(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    comma = tmp_path / "pairs.csv"
    pd.DataFrame(PAIRS, columns=PAIR_COLUMNS).to_csv(comma, index=False)
    semicolon = semicolon_file(tmp_path / "pairs-semicolon.csv", PAIRS, PAIR_COLUMNS)
    code, expected, err = run("eval", "pairs", str(comma), *PAIRS_RENAMED)
    assert code == 0, err
    code, out, err = run("eval", "pairs", str(semicolon), *PAIRS_RENAMED, "--delimiter", ";")
    assert code == 0, err
    report, reference = json.loads(out), json.loads(expected)
    assert report["pairs"] == len(PAIRS)
    assert {**report, "file": None} == {**reference, "file": None}


def test_eval_pairs_skips_a_bad_jsonl_line_only_when_told(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    source = jsonl_with_a_bad_line(tmp_path / "pairs.jsonl", PAIRS, ["question1", "question2", "is_duplicate"])
    code, _, err = run("eval", "pairs", str(source))
    assert code == 2 and "line 3" in err
    code, out, err = run("eval", "pairs", str(source), "--skip-bad-lines")
    assert code == 0, err
    assert f"{source}: skipped 1 malformed lines" in err
    assert json.loads(out)["pairs"] == len(PAIRS)


@pytest.mark.parametrize("task", ["retrieval", "mining"])
def test_eval_on_clusters_takes_the_reader_options(use_fake_encoder: FakeEncoder, tmp_path: Path, task: str) -> None:
    semicolon = semicolon_file(tmp_path / "questions.csv", QUESTIONS, CLUSTER_COLUMNS)
    code, out, err = run("eval", task, str(semicolon), "--delimiter", ";")
    assert code == 0, err
    assert json.loads(out)["questions"] == len(QUESTIONS)
    source = jsonl_with_a_bad_line(tmp_path / "questions.jsonl", QUESTIONS, CLUSTER_COLUMNS)
    code, out, err = run("eval", task, str(source), "--skip-bad-lines")
    assert code == 0, err
    assert f"{source}: skipped 1 malformed lines" in err and json.loads(out)["questions"] == len(QUESTIONS)


def test_calibrate_reads_a_semicolon_file_with_delimiter(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    semicolon = semicolon_file(tmp_path / "pairs.csv", PAIRS, PAIR_COLUMNS)
    code, out, err = run("calibrate", str(semicolon), *PAIRS_RENAMED, "--delimiter", ";", "--dry-run")
    assert code == 0, err
    assert json.loads(out)["calibration"]["pair"]["rows"] == len(PAIRS)
    code, _, err = run("calibrate", str(semicolon), *PAIRS_RENAMED, "--dry-run")
    assert code == 2  # sniffed as `,`-separated (its header holds a comma): not labeled pairs


def test_calibrate_skips_bad_jsonl_lines_in_each_file(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    pairs = jsonl_with_a_bad_line(tmp_path / "pairs.jsonl", PAIRS, ["question1", "question2", "is_duplicate"])
    questions = jsonl_with_a_bad_line(tmp_path / "questions.jsonl", QUESTIONS, CLUSTER_COLUMNS)
    args = ("calibrate", "--pairs", str(pairs), "--questions", str(questions), "--dry-run")
    code, _, err = run(*args)
    assert code == 2 and "--skip-bad-lines" in err
    code, out, err = run(*args, "--skip-bad-lines")
    assert code == 0, err
    assert f"{pairs}: skipped 1 malformed lines" in err and f"{questions}: skipped 1 malformed lines" in err
    calibration = json.loads(out)["calibration"]
    assert calibration["pair"]["rows"] == len(PAIRS) and calibration["mining"]["rows"] == len(QUESTIONS)


def test_blank_pairs_and_bad_lines_are_one_warning(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    rows = [*PAIRS, ("", "a question with no partner", 0)]
    source = jsonl_with_a_bad_line(tmp_path / "pairs.jsonl", rows, ["question1", "question2", "is_duplicate"])
    code, _, err = run("eval", "pairs", str(source), "--skip-bad-lines")
    assert code == 0, err
    assert f"{source}: skipped 1 pairs with a blank question and 1 malformed lines" in err


@pytest.mark.parametrize("command", ["train", "train-reranker"])
def test_training_commands_take_the_reader_options(use_fake_encoder: FakeEncoder, tmp_path: Path, command: str) -> None:
    """Read with the options (and the skipped line reported), then refused for too few pairs, before training."""
    semicolon = semicolon_file(tmp_path / "pairs.csv", PAIRS[:2], PAIR_COLUMNS)
    out = str(tmp_path / "out")
    code, _, err = run(command, "--pairs", str(semicolon), *PAIRS_RENAMED, "--delimiter", ";", "-o", out)
    assert code == 2 and "Read 2 pairs (1 duplicates)" in err and "too few pairs" in err
    source = jsonl_with_a_bad_line(tmp_path / "pairs.jsonl", PAIRS[:2], ["question1", "question2", "is_duplicate"])
    code, _, err = run(command, "--pairs", str(source), "--skip-bad-lines", "-o", out)
    assert code == 2 and f"{source}: skipped 1 malformed lines" in err and "too few pairs" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.tmp").exists()
