"""The rest of the bad-input corpus, through the CLI: warnings and errors, never a traceback."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pandas as pd
import pytest

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


MIXED = "".join(
    f'{{"question": "{text}", "x": {value}, "id": {value}}}\n'
    for text, value in [
        ("red apple pie", 1),
        ("Red apple pie", '"a"'),
        ("red apple pie!", '"b"'),
        ("Red apple pie?", 2),
    ]
)
TABBED = '{"question": "red apple\\tpie"}\n{"question": "Red apple pie"}\n'
UNWRITABLE = {
    "clusters, a mixed column to Parquet": (MIXED, ["clusters", "{q}", "-o", "{tmp}/out.parquet"], "column 'x'"),
    "dedupe, a mixed column to Parquet": (MIXED, ["dedupe", "{q}", "-o", "{tmp}/out.parquet"], "column 'x'"),
    "dedupe --map, mixed ids to Parquet": (
        MIXED,
        ["dedupe", "{q}", "--id-col", "id", "-o", "{tmp}/out.jsonl", "--map", "{tmp}/map.parquet"],
        "column 'id'",
    ),
    "mine, mixed ids to Parquet": (
        MIXED,
        ["mine", "{q}", "--id-col", "id", "-o", "{tmp}/pairs.parquet"],
        "column 'id'",
    ),
    "mine, mixed ids to Parquet parts": (MIXED, ["mine", "{q}", "--id-col", "id", "-o", "{tmp}/pairs/"], "column 'id'"),
    "search, mixed ids to Parquet": (
        MIXED,
        ["search", "{q}", "--queries", "{q}", "--id-col", "id", "-o", "{tmp}/hits.parquet"],
        "column 'id'",
    ),
    "mine, a tab to TSV": (TABBED, ["mine", "{q}", "-o", "{tmp}/pairs.tsv"], "row 1: column 'question' holds a tab"),
    "clusters, a tab to TSV": (TABBED, ["clusters", "{q}", "-o", "{tmp}/out.tsv"], "row 1: column 'question'"),
    "dedupe, a line break to text": (
        '{"question": "red apple\\npie"}\n{"question": "Red apple pie"}\n',
        ["dedupe", "{q}", "-o", "{tmp}/out.txt"],
        "row 1: column 'question' holds a line break, which a text file cannot hold",
    ),
}


@pytest.mark.parametrize("case", UNWRITABLE)
def test_a_column_the_output_cannot_hold_fails_before_encoding(
    use_fake_encoder: FakeEncoder, tmp_path: Path, case: str
) -> None:
    content, args, message = UNWRITABLE[case]
    source = tmp_path / "q.jsonl"
    source.write_text(content, encoding="utf-8")
    result = runner.invoke(app, [arg.format(q=source, tmp=tmp_path) for arg in args] + ["-t", "0.5", "--no-cache"])
    assert result.exit_code == 2, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("dupfind: error: ") and message in last and "q.jsonl" in last, result.stderr
    assert use_fake_encoder.calls == []
    assert [path.name for path in tmp_path.iterdir()] == ["q.jsonl"]


def test_ids_of_two_inputs_that_one_parquet_column_cannot_hold_fail_before_encoding(
    use_fake_encoder: FakeEncoder, tmp_path: Path
) -> None:
    corpus, new, out = tmp_path / "corpus.jsonl", tmp_path / "new.txt", tmp_path / "pairs.parquet"
    corpus.write_text('{"id": "k1", "question": "red apple pie"}\n{"id": "k2", "question": "sky"}\n', encoding="utf-8")
    new.write_text("Red apple pie\nred apple pie!\n", encoding="utf-8")
    index = tmp_path / "corpus.dfi"
    assert runner.invoke(app, ["index", "build", str(corpus), "--id-col", "id", "-o", str(index)]).exit_code == 0
    use_fake_encoder.calls.clear()
    args = ["mine", str(new), "--against", str(index), "--also-within", "-t", "0.5", "-o", str(out), "--no-cache"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and f"of {new} and {index} cannot be written as Parquet" in result.stderr
    assert use_fake_encoder.calls == [] and not out.exists()
