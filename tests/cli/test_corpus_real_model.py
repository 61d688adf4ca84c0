"""One real-model run of each corpus command (clusters, dedupe, index, search, mine --against), on small inputs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from dupfind.vectors.backends import register_backend, unregister_backend
from dupfind.vectors.encoding import Encoder
from tests.cli.runner import run
from tests.cli.test_dedupe import check_round_trip
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow
TICKETS = EXAMPLES / "support_tickets.csv"


@pytest.fixture
def use_real_encoder(monkeypatch: pytest.MonkeyPatch, real_encoder: Encoder) -> Iterator[None]:
    """Load the built-in model once for the session, not once per command: registered as a backend."""
    register_backend("loaded", lambda model: real_encoder)
    monkeypatch.setenv("DUPFIND_BACKEND", "loaded")
    yield
    unregister_backend("loaded")


def test_clusters(use_real_encoder: None) -> None:
    code, out, err = run("clusters", str(TICKETS), "--id-col", "id")
    assert code == 0, err
    group = {row["id"]: row["cluster_id"] for row in map(json.loads, out.splitlines())}
    assert group["t012"] == group["t014"] == group["t034"]
    # The default (fine-tuned) model keeps "dark mode for the desktop app?" apart from "dark mode?" at its
    # threshold; the base model grouped them.
    assert len({group["t008"], group["t012"], group["t013"], group["t030"]}) == 4


def test_dedupe(use_real_encoder: None, tmp_path: Path) -> None:
    check_round_trip(tmp_path)


def test_index_build_add_and_search(use_real_encoder: None, tmp_path: Path) -> None:
    tickets = pd.read_csv(TICKETS, dtype=str)
    first, rest = tmp_path / "first.csv", tmp_path / "rest.csv"
    tickets[:30].to_csv(first, index=False)
    tickets[30:].to_csv(rest, index=False)
    grown, whole = tmp_path / "grown.dfi", tmp_path / "whole.dfi"
    assert run("index", "build", str(first), "--id-col", "id", "-o", str(grown))[0] == 0
    assert run("index", "add", str(grown), str(rest), "--id-col", "id")[0] == 0
    assert run("index", "build", str(TICKETS), "--id-col", "id", "-o", str(whole))[0] == 0
    question = "How can I get my money back after being charged twice?"
    assert run("search", str(grown), question)[1] == run("search", str(whole), question)[1]


def test_search(use_real_encoder: None, tmp_path: Path) -> None:
    index = tmp_path / "corpus.dfi"
    assert run("index", "build", str(TICKETS), "--id-col", "id", "-o", str(index))[0] == 0
    code, out, _ = run("search", str(index), "How can I cancel my subscription?", "-k", "3")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and rows[0]["duplicate"] and rows[0]["id"] in {"t012", "t014", "t034"}


def test_mine_against(use_real_encoder: None, tmp_path: Path) -> None:
    new = tmp_path / "new.txt"
    new.write_text("Is there a dark mode available?\nWhat is the capital of France?\n", encoding="utf-8")
    code, out, err = run("mine", str(new), "--against", str(TICKETS))
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows and {row["id_a"] for row in rows} == {1}
    dark_mode = {"t008", "t011", "t030"}
    tickets = pd.read_csv(TICKETS, dtype=str)
    assert {row["question_b"] for row in rows} <= set(tickets[tickets["id"].isin(dark_mode)]["question"])
