"""`dupfind mine NEW --against CORPUS [--also-within]` through Typer's runner, with the fake encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.runner import run
from tests.conftest import EXAMPLES, FakeEncoder

TICKETS = EXAMPLES / "support_tickets.csv"
NEW = ["Is there a dark mode?", "is there a dark mode", "How do I cancel my subscription?", "Why is the sky blue?"]


@pytest.fixture
def new_txt(tmp_path: Path) -> Path:
    path = tmp_path / "new.txt"
    path.write_text("\n".join(NEW) + "\n", encoding="utf-8")
    return path


def pairs(out: str) -> list[tuple[object, object, float]]:
    return [(row["id_a"], row["id_b"], row["score"]) for row in map(json.loads, out.splitlines())]


def test_only_cross_pairs(use_fake_encoder: FakeEncoder, new_txt: Path) -> None:
    code, out, err = run("mine", str(new_txt), "--against", str(TICKETS), "-t", "0.9")
    assert code == 0, err
    found = pairs(out)
    assert {(a, b) for a, b, _ in found} == {(1, 30), (2, 30), (3, 12), (3, 14), (3, 34)}
    assert [score for *_, score in found] == sorted((score for *_, score in found), reverse=True)
    row = json.loads(out.splitlines()[0])
    assert set(row) == {"score", "id_a", "question_a", "id_b", "question_b"}
    assert row["question_a"] in NEW and row["question_b"] in TICKETS.read_text(encoding="utf-8")
    assert "5 pairs with cosine ≥ 0.900 with 40 questions of" in err


def test_an_index_gives_the_same_pairs_as_its_file(
    use_fake_encoder: FakeEncoder, new_txt: Path, tmp_path: Path
) -> None:
    index = tmp_path / "corpus.dfi"
    assert run("index", "build", str(TICKETS), "-o", str(index))[0] == 0
    from_file = run("mine", str(new_txt), "--against", str(TICKETS), "-t", "0.8")
    from_index = run("mine", str(new_txt), "--against", str(index), "-t", "0.8")
    assert from_file[0] == from_index[0] == 0
    assert from_file[1] == from_index[1]


def test_also_within_adds_new_vs_new(use_fake_encoder: FakeEncoder, new_txt: Path) -> None:
    code, out, err = run("mine", str(new_txt), "--against", str(TICKETS), "--also-within", "-t", "0.9")
    assert code == 0, err
    found = pairs(out)
    assert (1, 2, 1.0) in found and len(found) == 6
    assert "1 within" in err


def test_top_k_per_new_question(use_fake_encoder: FakeEncoder, new_txt: Path) -> None:
    code, out, err = run("mine", str(new_txt), "--against", str(TICKETS), "-t", "0.9", "--top-k", "1")
    assert code == 0
    assert sorted(a for a, _, _ in pairs(out)) == [1, 2, 3]
    assert "1 questions had more than 1 neighbours" in err


def test_also_within_needs_against(use_fake_encoder: FakeEncoder, new_txt: Path) -> None:
    code, out, err = run("mine", str(new_txt), "--also-within")
    assert code == 2 and out == "" and "--also-within needs --against" in err


def test_an_index_of_another_model_is_refused(use_fake_encoder: FakeEncoder, new_txt: Path, tmp_path: Path) -> None:
    index = tmp_path / "corpus.dfi"
    assert run("index", "build", str(TICKETS), "-o", str(index))[0] == 0
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "config.json").write_text("{}", encoding="utf-8")
    code, out, err = run("mine", str(new_txt), "--against", str(index), "--model", str(other))
    assert code == 2 and out == "" and "was built with model" in err and len(err.strip().splitlines()) == 1


def test_a_question_already_in_the_corpus_is_not_its_own_duplicate(
    use_fake_encoder: FakeEncoder, tmp_path: Path
) -> None:
    """Same id and same text is the same question: never a pair. Same text under another id is a duplicate."""
    corpus = tmp_path / "corpus.csv"
    corpus.write_text("id,question\n1,Is there a dark mode?\n2,How do I cancel my subscription?\n", encoding="utf-8")
    index = tmp_path / "corpus.dfi"
    assert run("index", "build", str(corpus), "--id-col", "id", "-o", str(index))[0] == 0
    new = tmp_path / "new.csv"
    new.write_text("id,question\n1,Is there a dark mode?\n7,Is there a dark mode?\n", encoding="utf-8")
    code, out, err = run("mine", str(new), "--id-col", "id", "--against", str(index), "-t", "0.9", "-k", "1")
    assert code == 0, err
    assert [(a, b) for a, b, _ in pairs(out)] == [("7", "1")]
