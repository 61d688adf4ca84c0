"""Nothing lost: rows written back exactly as read, exact ids and values, TSV without quoting, safe outputs."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import stat
import threading
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dupfind.errors import DupfindError
from dupfind.io.questions import load_questions
from dupfind.io.read import read_table
from dupfind.io.write import atomic_output, write_rows, write_table

BIG = 9007199254740993  # 2**53 + 1: not a float64


def kept_text(path: Path, positions: list[int], fmt: str | None = None) -> bytes:
    """What `write_rows` writes for these rows of `path` in the input's format (to a file beside it)."""
    questions = load_questions(str(path))
    out = path.with_name("out" + "".join(path.suffixes))
    write_rows(questions, positions, str(out), fmt or path.suffix.lstrip("."))
    return out.read_bytes()


@pytest.mark.parametrize(
    ("name", "content", "positions", "expected"),
    [
        (
            "q.jsonl",
            '{"b": 1e-09, "question": "one", "n": 10}\n\n{"question": "two"}\r\n{"question": "three", "x": null}',
            [0, 2],
            '{"b": 1e-09, "question": "one", "n": 10}\n\n{"question": "three", "x": null}',
        ),
        (
            "q.csv",
            'id,question\r\n1,"multi\r\nline, ""quoted"""\r\n2,two\r\n3,three\r\n',
            [0, 2],
            'id,question\r\n1,"multi\r\nline, ""quoted"""\r\n3,three\r\n',
        ),
        ("q.tsv", 'id\tquestion\n1\t"one\n2\ttwo\n', [0], 'id\tquestion\n1\t"one\n'),
        ("q.txt", "one\n\ntwo \r\nthree", [1, 3], "\nthree"),
        (
            "q.json",
            '[\n  {"question": "one", "f": 0.1000000000000000055},\n  {"question": "two", "n": 10}\n]\n',
            [1],
            '[\n  {"question": "two", "n": 10}\n]\n',
        ),
    ],
)
def test_rows_come_back_byte_identical(
    tmp_path: Path, name: str, content: str, positions: list[int], expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8"))
    assert kept_text(path, positions) == expected.encode("utf-8")


def test_other_encoding_and_bom_come_back(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_bytes("\ufeffquestion\ncafé ?\nthé ?\n".encode("utf-8"))
    assert kept_text(path, [1]) == "\ufeffquestion\nthé ?\n".encode("utf-8")
    path.write_bytes("question\ncafé ?\nthé ?\n".encode("latin-1"))
    questions = load_questions(str(path), encoding="latin-1")
    write_rows(questions, [0], str(tmp_path / "out.csv"), "csv")
    assert (tmp_path / "out.csv").read_bytes() == "question\ncafé ?\n".encode("latin-1")


def test_parquet_rows_keep_their_arrow_types_and_index(tmp_path: Path) -> None:
    frame = pd.concat(
        [
            pd.DataFrame({"question": ["a b", "c d"], "when": pd.to_datetime(["2020-01-01 00:00:00.123456"] * 2)}),
            pd.DataFrame({"question": ["e f", "g h"], "when": pd.to_datetime(["2021-01-01"] * 2)}),
        ]
    )
    path = tmp_path / "q.parquet"
    frame.to_parquet(path)
    questions = load_questions(str(path))
    assert len(questions.frame) == 4 and questions.ids == [1, 2, 3, 4]
    write_rows(questions, [1, 2], str(tmp_path / "out.parquet"), "parquet")
    original = pq.read_table(path)
    assert pq.read_table(tmp_path / "out.parquet").equals(original.take([1, 2]))


def test_a_named_parquet_index_is_a_column(tmp_path: Path) -> None:
    path = tmp_path / "q.parquet"
    pd.DataFrame({"key": ["k1", "k2"], "question": ["a b", "c d"]}).set_index("key").to_parquet(path)
    frame, _ = read_table(str(path))
    assert list(frame.columns) == ["question", "key"] and frame["key"].tolist() == ["k1", "k2"]


def test_another_output_format_falls_back_to_the_values(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "one", "n": 1}\n{"question": "two", "n": 2}\n', encoding="utf-8")
    assert kept_text(path, [1], "csv") == b"question,n\ntwo,2\n"
    assert kept_text(path, [0, 1], "txt") == b"one\ntwo\n"


def test_json_writer_keeps_values_exact(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "tiny": [1e-09, 0.1 + 0.2],
            "n": pd.array([10, None], dtype="Int64"),
            "i": [10, 11],
            "when": pd.to_datetime(["2020-01-01 00:00:00.123456", "2021-06-01 12:00:00.000001"]),
            "big": pd.Series([BIG, None], dtype=object),
        }
    )
    out = tmp_path / "out.jsonl"
    write_table(frame, str(out), "jsonl")
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines == [
        {"tiny": 1e-09, "n": 10, "i": 10, "when": "2020-01-01T00:00:00.123456", "big": BIG},
        {"tiny": 0.1 + 0.2, "n": None, "i": 11, "when": "2021-06-01T12:00:00.000001", "big": None},
    ]
    assert '"n": 10,' in out.read_text(encoding="utf-8")


def test_json_input_keeps_key_order_missing_keys_and_numbers_through_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "one", "n": 10}\n{"x": 1.5, "question": "two"}\n', encoding="utf-8")
    frame, _ = read_table(str(path))
    frame = frame.copy()
    frame["cluster_id"] = pd.array([1, 2], dtype="Int64")
    out = tmp_path / "out.jsonl"
    write_table(frame, str(out), "jsonl")
    assert out.read_text(encoding="utf-8") == (
        '{"question": "one", "n": 10, "cluster_id": 1}\n{"question": "two", "x": 1.5, "cluster_id": 2}\n'
    )


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet"])
def test_big_integer_ids_with_a_null_stay_exact(tmp_path: Path, fmt: str) -> None:
    records = [{"id": BIG, "question": "one"}, {"id": BIG - 1, "question": "two"}, {"id": None, "question": "x"}]
    path = tmp_path / f"q.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    elif fmt == "json":
        path.write_text(json.dumps(records), encoding="utf-8")
    else:
        pq.write_table(pa.Table.from_pylist(records), path)
    ids = load_questions(str(path), id_col="id").ids
    assert ids[:2] == [BIG, BIG - 1] and all(type(i) is int for i in ids[:2])
    assert pd.isna(ids[2])


def test_default_ids_are_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "one"}\n\nnot json\n{"question": "two"}\n', encoding="utf-8")
    assert load_questions(str(path), skip_bad_lines=True).ids == [1, 4]
    path = tmp_path / "q.txt"
    path.write_text("one\n\ntwo\n", encoding="utf-8")
    assert load_questions(str(path)).ids == [1, 3]
    path = tmp_path / "q.csv"
    path.write_text('question\n"one\nspanning"\n\ntwo\n', encoding="utf-8")
    assert load_questions(str(path)).ids == [1, 2]


def test_tsv_has_no_quoting(tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    path.write_text('id\tquestion\n1\t"Why" is it so?\n2\tan "open quote\n3\tthird\n', encoding="utf-8")
    questions = load_questions(str(path))
    assert questions.texts == ['"Why" is it so?', 'an "open quote', "third"]


def test_tsv_writer_refuses_tabs_and_newlines(tmp_path: Path) -> None:
    out = tmp_path / "out.tsv"
    with pytest.raises(DupfindError, match=r"column 'q'.*row 2.*tab or line break.*csv"):
        write_table(pd.DataFrame({"q": ["fine", "two\nlines"]}), str(out), "tsv")
    assert not out.exists()
    write_table(pd.DataFrame({"q": ['say "hi"', "ok"], "n": [1, 2]}), str(out), "tsv")
    assert out.read_text(encoding="utf-8") == 'q\tn\nsay "hi"\t1\nok\t2\n'


@pytest.mark.parametrize("sep", [";", "|"])
def test_other_csv_delimiters_are_sniffed(tmp_path: Path, sep: str) -> None:
    path = tmp_path / "q.csv"
    path.write_text(f"id{sep}question\n1{sep}How, exactly?\n2{sep}Why\n", encoding="utf-8")
    questions = load_questions(str(path))
    assert list(questions.frame.columns) == ["id", "question"]
    assert questions.texts == ["How, exactly?", "Why"]
    path.write_text(f"id{sep}question\n1{sep}Why\n", encoding="utf-8")
    assert load_questions(str(path), delimiter=",").frame.shape == (1, 1)


def test_csv_errors_name_the_physical_line(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('id,question\n1,"spans\nthree\nlines"\n2,ok,extra\n', encoding="utf-8")
    with pytest.raises(DupfindError, match=r"q\.csv: line 5: expected 2 fields, saw 3"):
        load_questions(str(path))
    path.write_text('id,question\n1,ok\n2,"never closed\n3,x\n', encoding="utf-8")
    with pytest.raises(DupfindError, match=r"q\.csv: line 3: .*quote"):
        load_questions(str(path))


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("q.jsonl", '{"question": "fine"}\n\n{"question": {"nested": 1}}\n', "line 3"),
        ("q.json", '[{"question": "fine"}, {"question": ["a", "b"]}]', "element 2"),
    ],
)
def test_nested_questions_are_refused(tmp_path: Path, name: str, content: str, where: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DupfindError, match=rf"{name}: {where}: column 'question' holds a"):
        load_questions(str(path))


def test_parquet_bytes_question_is_refused_and_numbers_are_text(tmp_path: Path) -> None:
    path = tmp_path / "q.parquet"
    pq.write_table(pa.table({"question": pa.array([b"abc", b"def"])}), path)
    with pytest.raises(DupfindError, match=r"q.parquet: row 1: column 'question' holds"):
        load_questions(str(path))
    path = tmp_path / "n.jsonl"
    path.write_text('{"question": 12}\n{"question": 1.5}\n', encoding="utf-8")
    assert load_questions(str(path)).texts == ["12", "1.5"]


def test_output_through_a_symlink_replaces_the_target(tmp_path: Path) -> None:
    target = tmp_path / "real.csv"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    write_table(pd.DataFrame({"a": [1]}), str(link), "csv")
    assert link.is_symlink() and target.read_text() == "a\n1\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_new_files_get_the_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_table(pd.DataFrame({"a": [1]}), str(tmp_path / "new.csv"), "csv")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.csv").stat().st_mode) == 0o640


def test_devices_and_fifos_are_written_directly(tmp_path: Path) -> None:
    devnull = tmp_path / "null.csv"
    devnull.symlink_to(os.devnull)
    write_table(pd.DataFrame({"a": [1]}), str(devnull), "csv")
    assert devnull.is_symlink() and stat.S_ISCHR(os.stat(os.devnull).st_mode)
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    with atomic_output(str(fifo)) as handle:
        handle.write("streamed\n")
    reader.join(timeout=10)
    assert received == [b"streamed\n"] and stat.S_ISFIFO(fifo.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null.csv", "pipe.jsonl"]


def test_positions_are_taken_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "q.txt"
    path.write_text("a\nb\nc\n", encoding="utf-8")
    assert kept_text(path, np.array([2, 0, 2]).tolist()) == b"a\nc\n"


def test_text_output_refuses_multi_line_questions(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('question\n"two\nlines"\none line\n', encoding="utf-8")
    with pytest.raises(DupfindError, match=r"column 'question' row 1 holds a tab or line break"):
        kept_text(path, [0, 1], "txt")
    assert kept_text(path, [1], "txt") == b"one line\n"


def test_gzip_in_gzip_out(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"question": "one"}\n{"question": "two"}\n'))
    questions = load_questions(str(path))
    write_rows(questions, [1], str(tmp_path / "out.jsonl.gz"), "jsonl")
    assert gzip.decompress((tmp_path / "out.jsonl.gz").read_bytes()) == b'{"question": "two"}\n'


def test_an_unwritable_folder_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(DupfindError, match=r"file/out\.csv: cannot write"):
        write_table(pd.DataFrame({"a": [1]}), str(tmp_path / "file" / "out.csv"), "csv")


def nested_parquet(path: Path) -> pa.Table:
    """A Parquet file of nested values: 1,500 floats of 17 significant digits, structs in lists, big integers beside
    nulls, timestamps to the nanosecond, decimals and bytes."""
    floats = [float(f"{value:.16e}") for value in np.random.default_rng(0).random(1500)]
    table = pa.table(
        {
            "question": ["one", "two", "three"],
            "floats": pa.array([floats, None, [None, 0.1]], pa.list_(pa.float64())),
            "ints": pa.array([[BIG, None], [], None], pa.list_(pa.int64())),
            "meta": pa.array(
                [
                    {"z": BIG, "a": [{"k": "x", "n": None}], "when": [1, None]},
                    {"z": None, "a": None, "when": None},
                    None,
                ],
                pa.struct(
                    [
                        ("z", pa.int64()),
                        ("a", pa.list_(pa.struct([("k", pa.string()), ("n", pa.int64())]))),
                        ("when", pa.list_(pa.timestamp("ns"))),
                    ]
                ),
            ),
            "money": pa.array([[Decimal("1.10")], [None], None], pa.list_(pa.decimal128(5, 2))),
            "raw": pa.array([[b"caf\xc3\xa9"], None, [b""]], pa.list_(pa.binary())),
        }
    )
    pq.write_table(table, path)
    return table


def pairs_in_order(text: str) -> object:
    """JSON text read back with each object as its list of (key, value) pairs, so that key order counts."""
    return json.loads(text, object_pairs_hook=lambda pairs: pairs)


NESTED_AS_JSON = [
    {
        "floats": None,
        "ints": [BIG, None],
        "meta": [("z", BIG), ("a", [[("k", "x"), ("n", None)]]), ("when", ["1970-01-01T00:00:00.000000001", None])],
        "money": ["1.10"],
        "raw": ["café"],
    },
    {"floats": None, "ints": [], "meta": [("z", None), ("a", None), ("when", None)], "money": [None], "raw": None},
    {"floats": [None, 0.1], "ints": None, "meta": None, "money": None, "raw": [""]},
]


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_nested_values_are_exact_json_text_in_csv_and_tsv(tmp_path: Path, fmt: str) -> None:
    source = tmp_path / "q.parquet"
    table = nested_parquet(source)
    out = tmp_path / f"out.{fmt}"
    write_rows(load_questions(str(source)), [0, 1, 2], str(out), fmt)
    text = out.read_text(encoding="utf-8")
    assert "..." not in text and "array(" not in text and "Decimal" not in text
    header, *rows = list(csv.reader(io.StringIO(text, newline=""), delimiter="," if fmt == "csv" else "\t"))
    assert header == table.column_names and [row[0] for row in rows] == ["one", "two", "three"]
    cells = [
        {name: pairs_in_order(cell) if cell else None for name, cell in zip(header[1:], row[1:], strict=True)}
        for row in rows
    ]
    expected = [dict(row) for row in NESTED_AS_JSON]
    expected[0]["floats"] = table["floats"][0].as_py()
    assert cells == expected
    assert all(type(value) is float for value in cells[0]["floats"])  # type: ignore[union-attr]


def test_jsonl_nested_values_stay_exact_in_every_format(tmp_path: Path) -> None:
    source = tmp_path / "q.jsonl"
    lines = [
        {"question": "one", "o": {"b": BIG, "a": None, "l": [BIG, None]}, "f": [1.5, 2]},
        {"question": "two", "o": None, "f": None},
    ]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    questions = load_questions(str(source))
    write_rows(questions, [0, 1], str(tmp_path / "out.csv"), "csv")
    cells = [row[1] for row in csv.reader(io.StringIO((tmp_path / "out.csv").read_text(encoding="utf-8")))]
    assert pairs_in_order(cells[1]) == [("b", BIG), ("a", None), ("l", [BIG, None])] and cells[2] == ""
    write_rows(questions, [0, 1], str(tmp_path / "out.parquet"), "parquet")
    assert pq.read_table(tmp_path / "out.parquet").to_pylist() == lines


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_big_integers_inside_nested_parquet_values_stay_exact(tmp_path: Path, fmt: str) -> None:
    source = tmp_path / "q.parquet"
    table = nested_parquet(source).select(["question", "ints", "meta"])
    pq.write_table(table, source)
    out = tmp_path / f"out.{fmt}"
    write_table(load_questions(str(source)).frame, str(out), fmt)
    if fmt == "parquet":
        assert pq.read_table(out).select(["ints", "meta"]).equals(table.select(["ints", "meta"]))
        return
    text = out.read_text(encoding="utf-8")
    if fmt == "jsonl":
        rows = [dict(pairs_in_order(line)) for line in text.splitlines()]  # type: ignore[call-overload]
    else:
        rows = [
            {name: cell if name == "question" else pairs_in_order(cell) if cell else None for name, cell in row.items()}
            for row in csv.DictReader(io.StringIO(text, newline=""))
        ]
    assert [{"ints": row["ints"], "meta": row["meta"]} for row in rows] == [
        {"ints": row["ints"], "meta": row["meta"]} for row in NESTED_AS_JSON
    ]
