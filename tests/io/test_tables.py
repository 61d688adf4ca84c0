"""Readers and writers: every format, stdin, column detection, atomic output, clear errors."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from dupfind.errors import DupfindError
from dupfind.io.destinations import check_destination
from dupfind.io.formats import output_format
from dupfind.io.questions import load_questions
from dupfind.io.read import read_table
from dupfind.io.write import write_parquet_parts, write_table

ROWS = [
    {"id": "a1", "question": "How do I reset my password?", "votes": 3},
    {"id": "a2", "question": "How can I reset my password, please?", "votes": 1},
    {"id": "a3", "question": "", "votes": 0},
    {"id": "a4", "question": "What is the capital of France?", "votes": 7},
]


def write_all_formats(tmp_path: Path) -> dict[str, Path]:
    frame = pd.DataFrame(ROWS)
    paths = {fmt: tmp_path / f"q.{fmt}" for fmt in ("csv", "tsv", "jsonl", "json", "parquet", "txt")}
    frame.to_csv(paths["csv"], index=False)
    frame.to_csv(paths["tsv"], index=False, sep="\t")
    frame.to_json(paths["jsonl"], orient="records", lines=True)
    frame.to_json(paths["json"], orient="records")
    frame.to_parquet(paths["parquet"], index=False)
    paths["txt"].write_text("\n".join(row["question"] for row in ROWS) + "\n", encoding="utf-8")
    return paths


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "json", "parquet", "txt"])
def test_every_format_reads_the_same_questions(tmp_path: Path, fmt: str) -> None:
    questions = load_questions(str(write_all_formats(tmp_path)[fmt]))
    assert questions.texts == [ROWS[i]["question"] for i in (0, 1, 3)]
    assert questions.ids == [1, 2, 4]
    assert questions.skipped_blank == 1
    assert questions.text_col == "question"


def test_id_column_and_gzip(tmp_path: Path) -> None:
    path = tmp_path / "q.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        pd.DataFrame(ROWS).to_csv(handle, index=False)
    questions = load_questions(str(path), id_col="id")
    assert questions.ids == ["a1", "a2", "a4"]


def test_stdin_with_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"first question\nsecond one\n")))
    assert load_questions("-", fmt="txt").texts == ["first question", "second one"]


def test_stdin_jsonl_is_sniffed(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b'{"text": "alpha beta"}\n{"text": "gamma"}\n'
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    questions = load_questions("-")
    assert questions.texts == ["alpha beta", "gamma"] and questions.text_col == "text"


def test_the_only_text_column_is_found(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text("num,prompt\n1,Is this a question?\n2,Another one here\n", encoding="utf-8")
    assert load_questions(str(path)).text_col == "prompt"


def test_ambiguous_columns_list_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text("subject,content\nHello there,Some words here\n", encoding="utf-8")
    with pytest.raises(DupfindError, match=r"several text columns.*--text-col.*subject, content"):
        load_questions(str(path))


def test_unknown_column(tmp_path: Path) -> None:
    path = write_all_formats(tmp_path)["csv"]
    with pytest.raises(DupfindError, match="no column 'title'"):
        load_questions(str(path), text_col="title")
    with pytest.raises(DupfindError, match="no id column 'key'"):
        load_questions(str(path), id_col="key")


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (None, "missing.csv", "no such file"),
        (b"", "empty.csv", "empty"),
        (b"id,question\n", "header.csv", "no rows"),
        (b"a,b\n1,2\n3,4,5\n", "ragged.csv", "line 3: expected 2 fields, saw 3"),
        (b'{"question": "ok"}\n{"question": broken\n', "bad.jsonl", "line 2: invalid JSON"),
        (b"question\ncaf\xe9 ?\n", "latin.csv", "line 2: bytes that are not valid utf-8"),
        (b"\x00\x01\x02\x03binary", "blob.csv", "binary"),
        (b"not parquet", "fake.parquet", "not a readable Parquet file"),
        (b'{"a": 1}', "obj.json", "expected a JSON array of objects"),
        (b"id,question\n1, \n2,\n", "blank.csv", "no non-blank questions"),
    ],
)
def test_bad_input_names_the_problem(tmp_path: Path, content: bytes | None, name: str, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DupfindError, match=message) as caught:
        load_questions(str(path))
    assert "\n" not in str(caught.value)
    assert name in str(caught.value)


def test_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DupfindError, match="is a directory"):
        read_table(str(tmp_path))


def test_skip_bad_lines_counts_them(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "one"}\nnope\n{"question": "two"}\n', encoding="utf-8")
    questions = load_questions(str(path), skip_bad_lines=True)
    assert questions.texts == ["one", "two"] and questions.skipped_bad_lines == 1


def test_other_encodings(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("question\ncafé ?\n".encode("latin-1"))
    assert load_questions(str(path), encoding="latin-1").texts == ["café ?"]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "json", "parquet"])
def test_writers_round_trip(tmp_path: Path, fmt: str) -> None:
    frame = pd.DataFrame({"score": [0.91, 0.8], "id_a": [1, 2], "question_a": ['a, "b"', "ü"], "id_b": [3, 4]})
    path = tmp_path / f"out.{fmt}"
    write_table(frame, str(path), output_format(str(path), None, False))
    back = {
        "csv": lambda: pd.read_csv(path),
        "tsv": lambda: pd.read_csv(path, sep="\t"),
        "jsonl": lambda: pd.read_json(path, lines=True),
        "json": lambda: pd.read_json(path),
        "parquet": lambda: pd.read_parquet(path),
    }[fmt]()
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    class Boom(Exception):
        pass

    frame = pd.DataFrame({"a": [1]})
    target = tmp_path / "out.jsonl"

    def explode(*args: object, **kwargs: object) -> None:
        raise Boom

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("dupfind.io.write._write_chunks", explode)
        with pytest.raises(Boom):
            write_table(frame, str(target), "jsonl")
    assert list(tmp_path.iterdir()) == []


def test_output_format_choice() -> None:
    assert output_format(None, None, True) == "table"
    assert output_format(None, None, False) == "jsonl"
    assert output_format("x.parquet", None, True) == "parquet"
    assert output_format("x.csv.gz", None, True) == "csv"
    with pytest.raises(DupfindError, match="cannot tell the output format"):
        output_format("x.out", None, True)


def test_jsonl_output_streams_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    write_table(pd.DataFrame({"score": [0.5, 0.25], "q": ["x", "y"]}), None, "jsonl")
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [{"score": 0.5, "q": "x"}, {"score": 0.25, "q": "y"}]


def test_gzip_output(tmp_path: Path) -> None:
    path = tmp_path / "out.csv.gz"
    write_table(pd.DataFrame({"a": [1, 2]}), str(path), output_format(str(path), None, False))
    assert pd.read_csv(path).a.tolist() == [1, 2]


def test_parquet_parts_keep_order_types_and_replace_a_folder_whole(tmp_path: Path) -> None:
    frame = pd.DataFrame({"score": [0.9, 0.8, 0.7, 0.6, 0.5], "id_a": ["x", "y", "z", "w", "v"], "id_b": range(5)})
    folder = tmp_path / "pairs"
    write_parquet_parts(frame, f"{folder}/", part_rows=2)
    assert sorted(path.name for path in folder.iterdir()) == [f"part-0000{k}.parquet" for k in range(3)]
    pd.testing.assert_frame_equal(pd.read_parquet(folder), frame)
    folder.chmod(0o750)
    write_parquet_parts(frame.head(0), str(folder))
    assert [path.name for path in folder.iterdir()] == ["part-00000.parquet"]
    assert pd.read_parquet(folder).columns.tolist() == ["score", "id_a", "id_b"]
    assert folder.stat().st_mode & 0o777 == 0o750
    assert [path.name for path in tmp_path.iterdir()] == ["pairs"]


def test_parquet_parts_interrupted_leave_the_old_folder(tmp_path: Path) -> None:
    class Boom(Exception):
        pass

    frame = pd.DataFrame({"score": [0.9, 0.8, 0.7]})
    folder = tmp_path / "pairs"
    write_parquet_parts(frame, str(folder), part_rows=1)

    def explode(*args: object, **kwargs: object) -> None:
        raise Boom

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("pyarrow.parquet.write_table", explode)
        with pytest.raises(Boom):
            write_parquet_parts(frame.head(1), str(folder))
    pd.testing.assert_frame_equal(pd.read_parquet(folder), frame)
    assert [path.name for path in tmp_path.iterdir()] == ["pairs"]


def test_a_folder_is_a_destination_only_for_parts(tmp_path: Path) -> None:
    assert output_format(f"{tmp_path}/", None, True) == "parquet"
    check_destination(f"{tmp_path}/new/", parts=True)
    with pytest.raises(DupfindError, match="is a directory"):
        check_destination(f"{tmp_path}/new/")
    with pytest.raises(DupfindError, match="is a directory"):
        check_destination(str(tmp_path))
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "part-00000.parquet").write_bytes(b"")
    for source in (tmp_path / "parts", tmp_path / "parts" / "part-00000.parquet", tmp_path / "parts" / "part-*"):
        with pytest.raises(DupfindError, match="holds the input"):
            check_destination(f"{tmp_path}/parts/", [str(source)], parts=True)


@pytest.mark.parametrize("foreign", ["a folder", "a link"])
def test_parts_never_replace_what_dupfind_did_not_write(tmp_path: Path, foreign: str) -> None:
    """A folder or a link named like a part is not a part: the folder holding it is refused, and left as it is."""
    folder, mine = tmp_path / "pairs", tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    folder.mkdir()
    if foreign == "a folder":
        mine.rename(folder / "part-00000.parquet")
        kept = folder / "part-00000.parquet" / "notes.txt"
    else:
        (folder / "part-00000.parquet").symlink_to(mine)
        kept = mine / "notes.txt"
    for write in (
        lambda: check_destination(f"{folder}/", parts=True),
        lambda: write_parquet_parts(pd.DataFrame(ROWS), str(folder)),
    ):
        with pytest.raises(DupfindError, match=r"holds part-00000\.parquet, not a Parquet part dupfind wrote"):
            write()
    assert kept.read_text() == "keep me" and [path.name for path in folder.iterdir()] == ["part-00000.parquet"]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "json", "parquet", "csv.gz"])
def test_a_frame_in_chunks_writes_the_bytes_of_the_whole_frame(tmp_path: Path, fmt: str) -> None:
    frame = pd.DataFrame({"score": [0.9, 0.85, 0.8, 0.5, 0.25], "id_a": ["x", "y", "z", "w", "é"], "id_b": range(5)})
    chunks = [frame.iloc[0:2], frame.iloc[2:3], frame.iloc[3:5]]
    write_table(frame, str(tmp_path / f"whole.{fmt}"), fmt.split(".")[0])
    write_table(iter(chunks), str(tmp_path / f"chunks.{fmt}"), fmt.split(".")[0])
    if fmt == "parquet":
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "chunks.parquet"), frame)
    else:
        assert (tmp_path / f"chunks.{fmt}").read_bytes() == (tmp_path / f"whole.{fmt}").read_bytes()


def test_parquet_parts_from_chunks_cut_at_the_part_size_with_one_schema(tmp_path: Path) -> None:
    frame = pd.DataFrame({"score": [0.9, 0.8, 0.7, 0.6, 0.5], "id_a": ["x", "y", "z", "w", "v"], "id_b": range(5)})
    write_parquet_parts(iter([frame.iloc[0:1], frame.iloc[1:4], frame.iloc[4:5]]), str(tmp_path / "pairs"), 2)
    parts = sorted((tmp_path / "pairs").iterdir())
    assert [len(pd.read_parquet(part)) for part in parts] == [2, 2, 1]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "pairs"), frame)


def test_tsv_in_chunks_names_the_row_of_the_whole_table(tmp_path: Path) -> None:
    frame = pd.DataFrame({"question": ["one", "two", "three", "fo\tur"]})
    with pytest.raises(DupfindError, match=r"column 'question' row 4 holds a tab"):
        write_table(iter([frame.iloc[0:3], frame.iloc[3:4]]), str(tmp_path / "out.tsv"), "tsv")
    assert not (tmp_path / "out.tsv").exists()
