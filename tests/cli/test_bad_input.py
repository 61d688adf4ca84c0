"""The rest of the bad-input corpus, through the CLI: warnings and errors, never a traceback."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pandas as pd

from dupfind.cli import app
from tests.cli.runner import runner
from tests.conftest import FakeEncoder

ROOT = Path(__file__).resolve().parents[2]


def test_long_questions_are_counted(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("short question here\n" + "word " * 100 + "\n", encoding="utf-8")
    result = runner.invoke(app, ["mine", str(path)])
    assert result.exit_code == 0
    assert "1 questions are longer than the model's 32 tokens" in result.stderr


def test_one_row_file(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("question\nIs this alone?\n", encoding="utf-8")
    result = runner.invoke(app, ["mine", str(path)])
    assert result.exit_code == 0 and result.stdout == ""
    assert "0 pairs" in result.stderr


def test_all_identical_questions(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    path = tmp_path / "same.txt"
    path.write_text("How do I cook rice?\n" * 30, encoding="utf-8")
    result = runner.invoke(app, ["mine", str(path)])
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and all(row["score"] == 1.0 for row in rows)
    assert "more than 10 neighbours" in result.stderr
    assert len(use_fake_encoder.calls) == 1 and use_fake_encoder.calls[0] == ["How do I cook rice?"]


def test_parquet_without_the_column(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    path = tmp_path / "q.parquet"
    pd.DataFrame({"n": [1, 2]}).to_parquet(path)
    result = runner.invoke(app, ["mine", str(path)])
    assert result.exit_code == 2 and "no text column" in result.stderr and "q.parquet" in result.stderr


def test_gzipped_jsonl(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write('{"text": "red apple pie"}\n{"text": "Red apple pie!"}\n')
    result = runner.invoke(app, ["mine", str(path), "-t", "0.9"])
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 1


def test_remote_code_is_never_trusted() -> None:
    sources = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "dupfind").rglob("*.py"))
    assert not re.search(r"trust_remote_code\s*=\s*True", sources)
    assert "allow_pickle=True" not in sources and "pickle.load" not in sources
