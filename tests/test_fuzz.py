"""Fuzzed inputs through the readers and mining: a DupfindError or a result, never anything else.

CI runs the `ci` profile; the long run (10,000+ cases per test) is
`HYPOTHESIS_PROFILE=long .venv/bin/pytest tests/test_fuzz.py`.
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

from dupfind.embedder import Embedder
from dupfind.errors import DupfindError
from dupfind.mining import mine_texts
from dupfind.tables import load_questions
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
    mined = mine_texts(Embedder(FakeEncoder()), questions.texts, threshold=0.5)
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
