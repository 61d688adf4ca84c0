"""`--engine ray` reads every file with dupfind's own reader, one Ray task per file: the same questions (ids,
texts, frame, what was skipped) and the same one-line errors as a local read of the same file, whatever the
format and the reader's options; the rows of a folder of shards numbered on from file to file."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("ray")
pytest.importorskip("ray.data")

from dupfind.cli import app
from dupfind.errors import DupfindError
from dupfind.io.questions import QuestionReader, Questions
from dupfind.pairs.index import open_index
from dupfind.ray.read import read_questions_ray
from tests.conftest import FakeEncoder

runner = CliRunner()

SEMICOLONS = b"id;question\n007;How do I reset my password?\n008;how do i reset my password?\n009;What is Ray?\n"
READS: dict[str, tuple[str, bytes, dict[str, Any]]] = {
    "semicolon CSV, sniffed": ("semi.csv", SEMICOLONS, {"id_col": "id"}),
    "semicolon CSV, --delimiter ';'": ("semi.csv", SEMICOLONS, {"id_col": "id", "delimiter": ";"}),
    "ids 007 kept": ("ids.csv", b"id,question\n007,First question\n0042,Second question\n", {"id_col": "id"}),
    "TSV with quotes": (
        "quotes.tsv",
        b'id\tquestion\n1\t"Is this quoted?" she asked\n2\tA "lone quote\n3\t"whole"\n',
        {"id_col": "id"},
    ),
    "CSV with a field over two lines": ("lines.csv", b'question\n"two\nlines"\n\nnext one\n', {}),
    "text with blank lines": ("blank.txt", b"first question\n\nsecond question\n   \nthird question\n", {}),
    "gzipped text with blank lines": ("blank.txt.gz", gzip.compress(b"\n\nfirst\n\nsecond\n"), {}),
    "JSONL with blank lines": ("blank.jsonl", b'{"question": "first"}\n\n{"question": "second"}\n\n\n"third"\n', {}),
    "JSONL, --skip-bad-lines": (
        "bad.jsonl",
        b'{"question": "first"}\n{not json\n{"question": "third", "n": 3}\n',
        {"skip_bad_lines": True},
    ),
    "latin-1 CSV, --encoding": (
        "latin.csv",
        "id,question\n1,Où est le café ?\n2,Ça va ?\n".encode("latin-1"),
        {"id_col": "id", "encoding": "latin-1"},
    ),
    "JSON array": ("array.json", b'[{"id": 1, "question": "a"},\n {"id": 2, "question": "b", "x": null}]', {}),
    "text read as TSV with --format-in": ("plain.txt", b"question\nfirst\n\nsecond\n", {"format_in": "tsv"}),
}


def assert_same_questions(on_ray: Questions, local: Questions) -> None:
    assert (on_ray.source, on_ray.text_col, on_ray.texts) == (local.source, local.text_col, local.texts)
    assert on_ray.ids == local.ids and [type(i) for i in on_ray.ids] == [type(i) for i in local.ids]
    assert on_ray.rows.tolist() == local.rows.tolist()
    assert (on_ray.skipped_blank, on_ray.skipped_bad_lines) == (local.skipped_blank, local.skipped_bad_lines)
    pd.testing.assert_frame_equal(on_ray.frame, local.frame)


@pytest.mark.parametrize("case", list(READS))
def test_a_file_reads_on_ray_as_locally(local_ray: None, tmp_path: Path, case: str) -> None:
    name, content, options = READS[case]
    (tmp_path / name).write_bytes(content)
    reader = QuestionReader(**options)
    source = str(tmp_path / name)
    assert_same_questions(read_questions_ray(source, reader), reader.load(source))


def test_the_examples_in_the_issue(local_ray: None, tmp_path: Path) -> None:
    (tmp_path / "semi.csv").write_bytes(SEMICOLONS)
    read = read_questions_ray(str(tmp_path / "semi.csv"), QuestionReader(id_col="id", delimiter=";"))
    assert read.ids == ["007", "008", "009"] and read.texts[0] == "How do I reset my password?"
    (tmp_path / "blank.jsonl").write_bytes(b'{"question": "a"}\n\n{"question": "b"}\n')
    assert read_questions_ray(str(tmp_path / "blank.jsonl"), QuestionReader()).ids == [1, 3]


BAD = {
    "invalid JSON": ("bad.jsonl", b'{"question": "first"}\n{not json\n', {}, "line 2: invalid JSON"),
    "too many fields": ("extra.csv", b"id,question\n1,a\n2,b,c\n", {}, "line 3: expected 2 fields, saw 3"),
    "not UTF-8": ("latin.csv", "question\nfirst\nCafé\n".encode("latin-1"), {}, "line 3: bytes that are not valid"),
    "a quote that never ends": ("open.csv", b'question\nfine\n"never ends\n', {}, "line 3: a quoted field starts"),
    "a nested object": ("nested.jsonl", b'{"question": {"a": 1}}\n', {}, "line 1: column 'question' holds"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_file_is_the_local_one_line_error(local_ray: None, tmp_path: Path, case: str) -> None:
    name, content, options, where = BAD[case]
    (tmp_path / name).write_bytes(content)
    reader = QuestionReader(**options)
    source = str(tmp_path / name)
    with pytest.raises(DupfindError) as local:
        reader.load(source)
    with pytest.raises(DupfindError) as on_ray:
        read_questions_ray(source, reader)
    assert str(on_ray.value) == str(local.value)
    assert str(on_ray.value).startswith(f"{source}: {where}") and "\n" not in str(on_ray.value)


def test_the_rows_of_a_folder_of_shards_are_numbered_on(local_ray: None, tmp_path: Path) -> None:
    parts = [b"first\n\nsecond\n", b"\nthird\n", b"fourth\n\n"]
    (tmp_path / "shards").mkdir()
    for number, part in enumerate(parts):
        (tmp_path / "shards" / f"part-{number}.txt").write_bytes(part)
    (tmp_path / "whole.txt").write_bytes(b"".join(parts))
    on_ray = read_questions_ray(str(tmp_path / "shards"), QuestionReader())
    local = QuestionReader().load(str(tmp_path / "whole.txt"))
    assert on_ray.ids == local.ids == [1, 3, 5, 6] and on_ray.texts == local.texts
    assert on_ray.skipped_blank == local.skipped_blank == 3


def test_shards_with_other_columns_keep_their_values_exact(local_ray: None, tmp_path: Path) -> None:
    (tmp_path / "shards").mkdir()
    (tmp_path / "shards" / "a.jsonl").write_bytes(b'{"id": 7, "question": "first"}\n')
    (tmp_path / "shards" / "b.jsonl").write_bytes(b'{"question": "second", "id": "x8"}\n{"question": "third"}\n')
    read = read_questions_ray(str(tmp_path / "shards"), QuestionReader(id_col="id"))
    assert read.ids[:2] == [7, "x8"] and type(read.ids[0]) is int and read.ids[2] is pd.NA
    assert read.texts == ["first", "second", "third"]


@pytest.fixture
def semicolons(tmp_path: Path) -> Path:
    path = tmp_path / "semi.csv"
    texts = ["How do I reset my password?", "how do i reset my password?", "How can I reset a password",
             "What is Ray?", "What is Ray Data?", "Where is the station?"]  # fmt: skip
    path.write_text("id;question\n" + "".join(f"00{i};{text}\n" for i, text in enumerate(texts)), encoding="utf-8")
    return path


@pytest.mark.parametrize("delimiter", [[], ["--delimiter", ";"]])
def test_mine_on_ray_of_a_semicolon_csv_finds_the_local_pairs(
    local_ray: None, use_fake_encoder: FakeEncoder, semicolons: Path, tmp_path: Path, delimiter: list[str]
) -> None:
    frames = {}
    for name, engine in {"local": ["--index", "ann"], "ray": ["--engine", "ray"]}.items():
        out = tmp_path / f"{name}.parquet"
        args = ["mine", str(semicolons), *delimiter, "--id-col", "id", "-t", "0.5", *engine, "-o", str(out)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (result.stderr, result.exception)
        frames[name] = pd.read_parquet(out)
    pd.testing.assert_frame_equal(frames["ray"], frames["local"])
    assert len(frames["ray"]) >= 1 and set(frames["ray"].id_a) <= {f"00{i}" for i in range(6)}


def test_index_built_on_ray_from_text_with_blank_lines_has_the_local_ids(
    local_ray: None, use_fake_encoder: FakeEncoder, tmp_path: Path
) -> None:
    (tmp_path / "q.txt").write_text("first question\n\nsecond question\n\n\nthird question\n", encoding="utf-8")
    built = {}
    for name, engine in {"local": [], "ray": ["--engine", "ray", "--work-dir", str(tmp_path / "work")]}.items():
        out = tmp_path / f"{name}.dfi"
        result = runner.invoke(app, ["index", "build", str(tmp_path / "q.txt"), *engine, "-o", str(out)])
        assert result.exit_code == 0, (result.stderr, result.exception)
        built[name] = open_index(str(out))
    assert built["ray"].ids == built["local"].ids == [1, 3, 6]
    assert built["ray"].texts == built["local"].texts


def test_a_bad_line_on_ray_is_the_local_error_and_exit_2(
    local_ray: None, use_fake_encoder: FakeEncoder, tmp_path: Path
) -> None:
    (tmp_path / "bad.jsonl").write_bytes(b'{"question": "first"}\n{"question": "second"}\n{not json\n')
    results = {
        name: runner.invoke(app, ["mine", str(tmp_path / "bad.jsonl"), *engine, "-o", str(tmp_path / "out.parquet")])
        for name, engine in {"local": [], "ray": ["--engine", "ray"]}.items()
    }
    assert results["ray"].exit_code == results["local"].exit_code == 2
    assert results["ray"].stderr == results["local"].stderr
    assert results["ray"].stderr == (
        f"dupfind: error: {tmp_path / 'bad.jsonl'}: line 3: invalid JSON (Expecting property name enclosed in "
        "double quotes); --skip-bad-lines skips such lines\n"
    )
    assert use_fake_encoder.calls == [] and not (tmp_path / "out.parquet").exists()
