"""Fuzzed inputs through the readers and mining: a DupfindError or a result, never anything else.

CI runs the `ci` profile; the long run (10,000+ cases per test) is
`HYPOTHESIS_PROFILE=long .venv/bin/pytest tests/io/test_fuzz.py`.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dupfind.errors import DupfindError
from dupfind.io.questions import load_questions
from dupfind.io.write import write_rows
from dupfind.pairs.mining import mine_texts
from dupfind.vectors.embedder import Embedder
from tests.conftest import FakeEncoder

settings.register_profile("ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

cell = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=200),
    st.sampled_from(["", " ", "NaN", "null", '"', '""', ",", "\t", "\n", "\r\n", "\\", "é", "🙂", "x" * 5000]),
)
headers = st.lists(st.sampled_from(["question", "text", "id", "a", "b", "Q", ""]), min_size=1, max_size=4)
rows = st.lists(st.lists(cell, min_size=0, max_size=5), min_size=0, max_size=12)


def check(path: Path, **options: object) -> None:
    try:
        questions = load_questions(str(path), **options)  # type: ignore[arg-type]
    except DupfindError as exc:
        assert "\n" not in str(exc)
        return
    assert len(questions.texts) == len(questions.ids) > 0
    mined = mine_texts(Embedder(FakeEncoder()), questions.texts, rule=0.5)
    assert all(a < b < len(questions.texts) for a, b in zip(mined.left.tolist(), mined.right.tolist(), strict=True))


@given(
    header=headers,
    body=rows,
    delimiter=st.sampled_from([",", "\t", ";", "|"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC, csv.QUOTE_NONE]),
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_delimited(tmp_path: Path, header: list[str], body: list[list[str]], delimiter: str, quoting: int) -> None:
    buffer = io.StringIO()
    try:
        writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, escapechar="\\")
        writer.writerow(header)
        writer.writerows(body)
    except csv.Error:
        return
    for suffix in (".csv", ".tsv"):
        path = tmp_path / f"fuzz{suffix}"
        path.write_bytes(buffer.getvalue().encode("utf-8", errors="replace"))
        check(path)


@given(
    records=st.lists(
        st.one_of(
            st.dictionaries(
                st.sampled_from(["question", "text", "id", "x"]), st.one_of(cell, st.integers(), st.none())
            ),
            cell,
            st.integers(),
            st.lists(cell, max_size=2),
        ),
        max_size=10,
    ),
    junk=st.lists(cell, max_size=3),
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_jsonl(tmp_path: Path, records: list[object], junk: list[str]) -> None:
    lines = [json.dumps(record) for record in records] + junk
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", errors="replace"))
    check(path)
    check(path, skip_bad_lines=True)


@given(data=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".json", ".txt", ".parquet"]))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_arbitrary_bytes(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    check(path)


@pytest.mark.parametrize("text", ["a", "?", "🙂" * 300, "word " * 2000])
def test_single_odd_question(tmp_path: Path, text: str) -> None:
    path = tmp_path / "one.txt"
    path.write_text(text, encoding="utf-8")
    check(path)


question = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
record = st.fixed_dictionaries(
    {"question": question},
    optional={"n": st.one_of(st.integers(-(2**63), 2**63 - 1), st.none()), "f": st.floats(allow_nan=False)},
)


def _delimited(records: list[dict[str, object]], sep: str, quoting: int, newline: str) -> tuple[str, list[str]]:
    """The header and each row's text as csv.writer writes them."""

    def line(cells: list[object]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=sep, quoting=quoting, lineterminator=newline).writerow(cells)
        return buffer.getvalue()

    return line(["question", "n"]), [line([r["question"], r.get("n", "")]) for r in records]


@given(
    fmt=st.sampled_from(["csv", "tsv", "jsonl", "json", "parquet", "txt"]),
    records=st.lists(record, min_size=1, max_size=8),
    style=st.integers(0, 3),
    final_newline=st.booleans(),
    data=st.data(),
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_write_rows_gives_back_the_rows_as_they_were(
    tmp_path: Path, fmt: str, records: list[dict[str, object]], style: int, final_newline: bool, data: st.DataObject
) -> None:
    """What `dedupe` keeps is the selected input rows, byte for byte (text formats) or Arrow-equal (Parquet)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    records[0]["question"] = f"q {records[0]['question']}"
    path = tmp_path / f"in.{fmt}"
    newline = "\r\n" if style % 2 else "\n"
    if fmt == "csv":
        sep, quoting = [(",", csv.QUOTE_MINIMAL), (";", csv.QUOTE_ALL), ("|", csv.QUOTE_MINIMAL), (",", csv.QUOTE_ALL)][
            style
        ]
        if quoting == csv.QUOTE_MINIMAL:  # Python 3.11's writer leaves a lone \r unquoted: not a CSV row
            for r in records:
                r["question"] = str(r["question"]).replace("\r", " ")
        header, rows = _delimited(records, sep, quoting, newline)
    elif fmt == "tsv":
        for r in records:
            r["question"] = str(r["question"]).translate({9: " ", 10: " ", 13: " "})
        header, rows = "question\tn" + newline, [f"{r['question']}\t{r.get('n', '')}{newline}" for r in records]
    elif fmt == "txt":
        header, rows = "", [str(r["question"]).replace("\n", " ") + newline for r in records]
    elif fmt == "jsonl":
        header, rows = "", [json.dumps(r, ensure_ascii=style < 2) + newline for r in records]
    if fmt in ("csv", "tsv", "txt", "jsonl") and not final_newline and rows[-1] != newline:
        rows[-1] = rows[-1].removesuffix(newline)
    if fmt == "json":
        prefix, separator, suffix = [("[", ", ", "]"), ("[\n  ", ",\n  ", "\n]\n")][style % 2]
        objects = [json.dumps(r, ensure_ascii=style < 2, indent=None if style < 2 else 1) for r in records]
        path.write_text(prefix + separator.join(objects) + suffix, encoding="utf-8")
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(records), path)
    else:
        path.write_text(header + "".join(rows), encoding="utf-8", newline="")
    positions = sorted(data.draw(st.sets(st.integers(0, len(records) - 1))))
    out = tmp_path / f"out.{fmt}"
    write_rows(load_questions(str(path), text_col="question"), positions, str(out), fmt)
    if fmt == "parquet":
        assert pq.read_table(out).equals(pq.read_table(path).take(pa.array(positions, pa.int64())), check_metadata=True)
    elif fmt == "json":
        assert out.read_text(encoding="utf-8") == prefix + separator.join(objects[i] for i in positions) + suffix
    else:
        assert out.read_bytes() == (header + "".join(rows[i] for i in positions)).encode("utf-8")


@given(
    fmt=st.sampled_from(["csv", "tsv", "jsonl", "json"]),
    records=st.lists(record, min_size=1, max_size=8),
    style=st.integers(0, 3),
    added=st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), question), min_size=8, max_size=8),
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_added_columns_read_back_after_the_rows_as_they_were(
    tmp_path: Path, fmt: str, records: list[dict[str, object]], style: int, added: list[object]
) -> None:
    """What `clusters` writes in the input's format reads back as the input's rows, then the added columns."""
    import pandas as pd

    from dupfind.io.read import read_rows

    records[0]["question"] = f"q {records[0]['question']}"
    path = tmp_path / f"in.{fmt}"
    newline = "\r\n" if style % 2 else "\n"
    if fmt == "csv":
        sep, quoting = [(",", csv.QUOTE_MINIMAL), (";", csv.QUOTE_ALL), ("|", csv.QUOTE_MINIMAL), (",", csv.QUOTE_ALL)][
            style
        ]
        for r in records:
            r["question"] = str(r["question"]).replace("\r", " ")
        header, rows = _delimited(records, sep, quoting, newline)
        text = header + "".join(rows)
    elif fmt == "tsv":
        for r in records:
            r["question"] = str(r["question"]).translate({9: " ", 10: " ", 13: " "})
        text = "question\tn" + newline + "".join(f"{r['question']}\t{r.get('n', '')}{newline}" for r in records)
    elif fmt == "jsonl":
        text = "".join(json.dumps(r, ensure_ascii=style < 2) + newline for r in records)
    else:
        text = json.dumps(records, ensure_ascii=style < 2, indent=None if style < 2 else 1)
    path.write_text(text, encoding="utf-8", newline="")
    questions = load_questions(str(path), text_col="question")
    count = len(questions.frame)
    if fmt == "tsv":
        added = [value.translate({9: " ", 10: " ", 13: " "}) if isinstance(value, str) else value for value in added]
    representative = pd.Series(added[:count], dtype=object)
    columns = pd.DataFrame({"cluster_id": pd.array(range(count), dtype="Int64"), "representative": representative})
    out = tmp_path / f"out.{fmt}"
    write_rows(questions, range(count), str(out), fmt, columns)
    if fmt in ("jsonl", "json"):
        lines = out.read_text(encoding="utf-8").split("\n")
        read = [json.loads(line) for line in lines if line.strip()] if fmt == "jsonl" else None
        objects = read if read is not None else json.loads(out.read_text(encoding="utf-8"))
        expected = [{**r, "cluster_id": i, "representative": added[i]} for i, r in enumerate(records)]
        assert [list(o.items()) for o in objects] == [list(e.items()) for e in expected]
        return
    back = read_rows(str(out)).frame
    assert list(back.columns) == [*questions.frame.columns, "cluster_id", "representative"]
    for name in questions.frame.columns:
        assert back[name].tolist() == questions.frame[name].tolist()
    assert back["cluster_id"].tolist() == [str(i) for i in range(count)]
    assert back["representative"].tolist() == ["" if value is None else str(value) for value in added[:count]]
