"""`dupfind dedupe` through Typer's runner, with the fake encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.cli.runner import run
from tests.conftest import EXAMPLES, FakeEncoder

TICKETS = EXAMPLES / "support_tickets.csv"


def check_round_trip(tmp_path: Path, *options: str) -> None:
    """Dedupe the support tickets: one row per group, columns and order intact, every removed row mapped."""
    out, mapping, groups = tmp_path / "unique.csv", tmp_path / "map.csv", tmp_path / "groups.csv"
    code, _, summary = run("dedupe", str(TICKETS), "--id-col", "id", "-o", str(out), "--map", str(mapping), *options)
    assert code == 0, summary
    code, _, err = run("clusters", str(TICKETS), "--id-col", "id", "-o", str(groups), *options)
    assert code == 0, err
    original = pd.read_csv(TICKETS, dtype=str, keep_default_na=False)
    kept = pd.read_csv(out, dtype=str, keep_default_na=False)
    removed = pd.read_csv(mapping, dtype={"removed_id": str, "kept_id": str})
    grouped = pd.read_csv(groups, dtype=str)
    assert len(kept) == grouped["cluster_id"].nunique() < len(original)
    assert list(kept.columns) == list(original.columns)
    assert kept.merge(original, how="left", indicator=True)["_merge"].eq("both").all()
    assert kept["id"].tolist() == [i for i in original["id"] if i in set(kept["id"])]
    assert sorted([*kept["id"], *removed["removed_id"]]) == original["id"].tolist()
    assert set(removed["kept_id"]) <= set(kept["id"])
    assert list(removed.columns) == ["removed_id", "kept_id", "score", "removed_question", "kept_question"]
    cluster_of = dict(zip(grouped["id"], grouped["cluster_id"], strict=True))
    assert all(cluster_of[a] == cluster_of[b] for a, b in zip(removed["removed_id"], removed["kept_id"], strict=True))
    assert f"{len(original)} rows in, {len(kept)} out" in summary


@pytest.mark.parametrize("method", ["communities", "components"])
def test_support_tickets_round_trip(use_fake_encoder: FakeEncoder, tmp_path: Path, method: str) -> None:
    check_round_trip(tmp_path, "-t", "0.5", "--method", method)


@pytest.mark.parametrize(("keep", "kept"), [("first", "t009"), ("longest", "t025")])
def test_keep_policy(use_fake_encoder: FakeEncoder, tmp_path: Path, keep: str, kept: str) -> None:
    mapping = tmp_path / "map.jsonl"
    code, out, _ = run("dedupe", str(TICKETS), "--id-col", "id", "-t", "0.6", "--keep", keep, "--map", str(mapping))
    assert code == 0
    pairs = {row["removed_id"]: row["kept_id"] for row in map(json.loads, mapping.read_text().splitlines())}
    assert pairs[{"t009": "t025", "t025": "t009"}[kept]] == kept
    assert out.startswith("id,question,votes,created_at\n")


def test_same_format_as_the_input_and_blank_rows_kept(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    source = tmp_path / "questions.txt"
    source.write_text("red apple pie\n\nRed apple pie!\nwhy is the sky blue\n", encoding="utf-8")
    code, out, err = run("dedupe", str(source), "-t", "0.9")
    assert code == 0, err
    assert out == "red apple pie\n\nwhy is the sky blue\n"
    assert "1 blank rows kept as they are" in err
    jsonl = tmp_path / "questions.jsonl"
    jsonl.write_text('{"q": "red apple pie", "n": 1}\n{"q": "Red apple pie", "n": 2}\n', encoding="utf-8")
    code, out, _ = run("dedupe", str(jsonl), "--text-col", "q", "-t", "0.9")
    assert code == 0 and [json.loads(line) for line in out.splitlines()] == [{"q": "red apple pie", "n": 1}]
    parquet = tmp_path / "unique.parquet"
    code, out, _ = run("dedupe", str(jsonl), "--text-col", "q", "-t", "0.9", "-o", str(parquet))
    assert code == 0 and out == "" and pd.read_parquet(parquet)["n"].tolist() == [1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--keep", "last"], "unknown --keep 'last'"),
        (["--map", "map.weird"], "cannot tell the output format"),
        (["--method", "louvain"], "unknown --method"),
        (["--format", "xml"], "unknown output format 'xml'"),
    ],
)
def test_errors_are_one_line_and_write_nothing(
    use_fake_encoder: FakeEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run("dedupe", str(TICKETS), "-o", "unique.csv", *args)
    assert code == 2 and out == ""
    assert err.startswith("dupfind: error: ") and message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_stdin_needs_a_format(use_fake_encoder: FakeEncoder) -> None:
    code, _, err = run("dedupe", "-", input="a\nb\n")
    assert code == 2 and "cannot tell the output format" in err
    code, out, _ = run("dedupe", "-", "--format-in", "txt", "-t", "0.9", input="a b\nA  b\nc\n")
    assert code == 0 and out == "a b\nc\n"
