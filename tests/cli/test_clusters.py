"""`dupfind clusters` through Typer's runner, with the fake encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from dupfind.cli import app
from tests.cli.runner import runner
from tests.conftest import EXAMPLES, FakeEncoder

CHAIN = [
    "alpha beta gamma delta",
    "gamma delta epsilon zeta",
    "epsilon zeta eta theta",
    "eta theta iota kappa",
    "",
    "why is the sky blue",
]


@pytest.fixture
def chain_csv(tmp_path: Path) -> Path:
    path = tmp_path / "chain.csv"
    pd.DataFrame({"id": [f"c{i}" for i in range(len(CHAIN))], "question": CHAIN, "votes": range(6)}).to_csv(
        path, index=False
    )
    return path


def clusters(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["clusters", *args])
    return result.exit_code, result.stdout, result.stderr


def test_every_row_gets_its_group_as_jsonl(use_fake_encoder: FakeEncoder, chain_csv: Path) -> None:
    code, out, err = clusters(str(chain_csv), "--id-col", "id", "-t", "0.45", "--method", "components")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["id"] for row in rows] == ["c0", "c1", "c2", "c3", "c4", "c5"]
    assert set(rows[0]) == {"id", "question", "votes", "cluster_id", "cluster_size", "representative"}
    assert [row["cluster_id"] for row in rows] == [1, 1, 1, 1, None, 2]
    assert [row["cluster_size"] for row in rows] == [4, 4, 4, 4, None, 1]
    assert rows[0]["representative"] in ("c1", "c2") and rows[5]["representative"] == "c5"
    assert "skipped 1 blank" in err and "5 questions in 2 groups" in err and "largest of 4" in err


def test_communities_do_not_chain(use_fake_encoder: FakeEncoder, chain_csv: Path) -> None:
    code, out, _ = clusters(str(chain_csv), "--id-col", "id", "-t", "0.45", "--method", "communities")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["cluster_id"] for row in rows] == [1, 1, 1, 2, None, 3]
    assert [row["representative"] for row in rows] == ["c1", "c1", "c1", "c3", None, "c5"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_output_file_keeps_every_column(use_fake_encoder: FakeEncoder, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"groups.{fmt}"
    code, stdout, err = clusters(str(EXAMPLES / "support_tickets.csv"), "--id-col", "id", "-t", "0.5", "-o", str(out))
    assert code == 0, err
    assert stdout == ""
    frame = pd.read_csv(out, dtype={"votes": str}) if fmt == "csv" else pd.read_parquet(out)
    original = pd.read_csv(EXAMPLES / "support_tickets.csv", dtype=str)
    assert list(frame.columns) == [*original.columns, "cluster_id", "cluster_size", "representative"]
    assert frame["id"].tolist() == original["id"].tolist()
    assert frame.groupby("cluster_id")["representative"].nunique().eq(1).all()
    assert frame.groupby("cluster_id").size().tolist() == frame.groupby("cluster_id")["cluster_size"].first().tolist()


def test_table_on_request(use_fake_encoder: FakeEncoder, chain_csv: Path) -> None:
    code, out, _ = clusters(str(chain_csv), "--format", "table")
    assert code == 0 and "Groups of duplicates" in out and "cluster_id" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv"], "missing.csv: no such file"),
        (["{csv}", "--method", "louvain"], "unknown --method 'louvain'"),
        (["{csv}", "--threshold", "2"], "--threshold must be between -1 and 1"),
        (["{csv}", "-o", "groups.weird"], "cannot tell the output format"),
    ],
)
def test_errors_are_one_line_exit_2(
    use_fake_encoder: FakeEncoder,
    chain_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = clusters(*[arg.replace("{csv}", str(chain_csv)) for arg in args])
    assert code == 2 and out == ""
    assert err.startswith("dupfind: error: ") and message in err and len(err.strip().splitlines()) == 1


def test_an_input_with_a_column_clusters_adds_is_refused_before_encoding(
    use_fake_encoder: FakeEncoder, tmp_path: Path
) -> None:
    file = tmp_path / "grouped.csv"
    file.write_text("id,question,cluster_id\n1,red apple pie,7\n2,Red apple pie!,8\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["clusters", str(file), "--id-col", "id", "-o", str(out)])
    assert result.exit_code == 2 and "already has a column 'cluster_id'" in result.stderr
    assert not out.exists() and use_fake_encoder.calls == []
