"""`dupfind search` through Typer's runner, with the fake encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.runner import run
from tests.conftest import EXAMPLES, FakeEncoder

TICKETS = EXAMPLES / "support_tickets.csv"


@pytest.fixture
def index(use_fake_encoder: FakeEncoder, tmp_path: Path) -> Path:
    path = tmp_path / "corpus.dfi"
    assert run("index", "build", str(TICKETS), "--id-col", "id", "-o", str(path))[0] == 0
    return path


def test_top_k_with_duplicates_marked_exit_0(index: Path) -> None:
    code, out, err = run("search", "--no-rerank", str(index), "how do I cancel my subscription?", "-t", "0.9")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["rank"] for row in rows] == [1, 2, 3, 4, 5]
    assert set(rows[0]) == {"rank", "score", "duplicate", "id", "question"}
    assert {row["id"] for row in rows[:3]} == {"t012", "t014", "t034"}
    assert [row["duplicate"] for row in rows] == [True, True, True, False, False]
    assert rows == sorted(rows, key=lambda row: -row["score"])
    assert "3 of 5 results" in err


def test_no_duplicate_exits_1(index: Path) -> None:
    code, out, _ = run("search", "--no-rerank", str(index), "completely unrelated words here", "-k", "2")
    assert code == 1 and len(out.splitlines()) == 2


def test_a_plain_file_is_encoded_on_the_fly_with_the_same_results(index: Path) -> None:
    question = "Is there a dark mode for the app?"
    from_index = run("search", "--no-rerank", str(index), question, "-k", "4")
    from_file = run("search", "--no-rerank", str(TICKETS), question, "-k", "4", "--id-col", "id")
    assert from_index[1] == from_file[1] and from_index[0] == from_file[0]


def test_queries_file(index: Path, tmp_path: Path) -> None:
    queries = tmp_path / "queries.txt"
    queries.write_text("is there a dark mode\nhow do I cancel my subscription\n", encoding="utf-8")
    code, out, _ = run("search", "--no-rerank", str(index), "--queries", str(queries), "-k", "3", "--format", "csv")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "query_id,query,rank,score,duplicate,id,question" and len(lines) == 7
    assert lines[1].startswith("1,is there a dark mode,1,")


def test_table_on_a_terminal_format(index: Path) -> None:
    code, out, _ = run("search", "--no-rerank", str(index), "is there a dark mode", "--format", "table")
    assert code == 0 and "Nearest to: is there a dark mode" in out and "t030" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{index}"], "give either a QUESTION or --queries FILE"),
        (["{index}", "q", "--queries", "x.txt"], "give either a QUESTION or --queries FILE"),
        (["{index}", "  "], "the question is blank"),
        (["{index}", "q", "-k", "0"], "-k must be at least 1"),
        (["missing.dfi", "q"], "missing.dfi: no such index"),
        (["missing.csv", "q"], "missing.csv: no such file"),
    ],
)
def test_errors_are_one_line_exit_2(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run("search", "--no-rerank", *[arg.replace("{index}", str(index)) for arg in args])
    assert code == 2 and out == ""
    assert err.startswith("dupfind: error: ") and message in err and len(err.strip().splitlines()) == 1


def test_a_corrupt_index_is_one_line(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    broken = tmp_path / "broken.dfi"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    code, _, err = run("search", "--no-rerank", str(broken), "q")
    assert code == 2 and f"{broken}: not a dupfind index" in err
