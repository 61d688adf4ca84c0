"""`dupfind index build|add` through Typer's runner, with the fake encoder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from dupfind.pairs.index import open_index
from dupfind.vectors.model import DEFAULT_MODEL
from tests.cli.runner import run
from tests.conftest import EXAMPLES, FakeEncoder

TICKETS = EXAMPLES / "support_tickets.csv"


@pytest.fixture
def built(use_fake_encoder: FakeEncoder, tmp_path: Path) -> Path:
    path = tmp_path / "corpus.dfi"
    code, out, err = run("index", "build", str(TICKETS), "--id-col", "id", "-o", str(path))
    assert code == 0, err
    assert out == "" and "Indexed 40 questions" in err
    return path


def test_build_stores_questions_and_model(built: Path) -> None:
    index = open_index(str(built))
    tickets = pd.read_csv(TICKETS, dtype=str)
    assert index.ids == tickets["id"].tolist() and index.texts == tickets["question"].tolist()
    assert index.embeddings.shape == (40, FakeEncoder.dim)
    assert index.model == DEFAULT_MODEL


def test_add_appends_atomically(built: Path, tmp_path: Path) -> None:
    new = tmp_path / "new.txt"
    new.write_text("Is there a dark mode?\n\nHow do I export my data?\n", encoding="utf-8")
    code, _, err = run("index", "add", str(built), str(new))
    assert code == 0, err
    index = open_index(str(built))
    assert len(index) == 42
    assert index.ids[-2:] == ["41", "43"]  # numbered on from the index's size, as strings beside the string ids
    assert index.texts[-1] == "How do I export my data?"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.dfi", "new.txt"]


def test_add_refuses_ids_already_there(built: Path) -> None:
    before = built.read_bytes()
    code, _, err = run("index", "add", str(built), str(TICKETS), "--id-col", "id")
    assert code == 2 and "40 ids of" in err and "t001" in err
    assert built.read_bytes() == before


def test_a_different_model_is_refused(built: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "config.json").write_text("{}", encoding="utf-8")
    code, _, err = run("index", "add", str(built), str(TICKETS), "--model", str(other))
    assert code == 2 and f"built with model '{DEFAULT_MODEL}'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "missing.dfi", "{csv}"], "missing.dfi: no such index"),
        (["add", "{csv}", "{csv}"], "not a dupfind index"),
        (["build", "{csv}", "-o", "no/such/dir/corpus.dfi"], "does not exist"),
        (["build", "missing.csv", "-o", "corpus.dfi"], "missing.csv: no such file"),
    ],
)
def test_errors_are_one_line_exit_2(
    use_fake_encoder: FakeEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run("index", *[arg.replace("{csv}", str(TICKETS)) for arg in args])
    assert code == 2 and out == ""
    assert err.startswith("dupfind: error: ") and message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["index", "add", "{index}", "{csv}"], ["search", "{index}", "How do I log in?"]])
def test_a_model_named_by_the_index_is_never_fetched(
    use_fake_encoder: FakeEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    import hashlib

    import numpy as np

    from dupfind.pairs.index import Index, save_index
    from dupfind.thresholds import Thresholds

    monkeypatch.setenv("DUPFIND_ALLOW_DOWNLOADS", "1")  # not even then
    name = "attacker/evil-model"
    forged = hashlib.sha256(name.encode()).hexdigest()[:16]
    path = tmp_path / "corpus.dfi"
    rows = np.eye(FakeEncoder.dim, dtype=np.float32)[:1]
    save_index(Index(["t1"], ["How do I log in?"], rows, name, forged, Thresholds(0.7, 0.8)), str(path))
    code, out, err = run(*[arg.format(index=path, csv=TICKETS) for arg in command])
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "'attacker/evil-model', which is not a local model directory" in err and "--model" in err
    assert use_fake_encoder.calls == []


@pytest.fixture
def int8_index(fake_encoder: FakeEncoder, tmp_path: Path) -> Iterator[Path]:
    """An index built at --precision int8, by the fake encoder standing in for the openvino backend (the one
    backend with int8), of a model whose dupfind.json holds int8 thresholds of their own."""
    import json

    from dupfind.vectors.backends import register_backend, unregister_backend

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}", encoding="utf-8")
    int8 = {"pair_threshold": 0.6, "mining_threshold": 0.65}
    settings = {"pair_threshold": 0.7, "mining_threshold": 0.75, "int8": int8}
    (model / "dupfind.json").write_text(json.dumps(settings), encoding="utf-8")
    register_backend("openvino", lambda ref: fake_encoder)
    path = tmp_path / "corpus.dfi"
    args = ["--model", str(model), "--backend", "openvino"]
    code, _, err = run("index", "build", str(TICKETS), "--id-col", "id", "-o", str(path), *args, "--precision", "int8")
    assert code == 0, err
    yield path
    unregister_backend("openvino")


def test_an_index_keeps_its_precision_and_the_thresholds_of_it(int8_index: Path) -> None:
    from dupfind.thresholds import Thresholds

    index = open_index(str(int8_index))
    assert (index.precision, index.thresholds) == ("int8", Thresholds(0.6, 0.65))


@pytest.mark.parametrize(
    "command",
    [
        ["index", "add", "{index}", "{new}"],
        ["search", "{index}", "How do I log in?"],
        ["mine", "{new}", "--against", "{index}"],
    ],
)
def test_another_precision_than_the_index_is_refused(
    int8_index: Path, fake_encoder: FakeEncoder, tmp_path: Path, command: list[str]
) -> None:
    new = tmp_path / "new.txt"
    new.write_text("Is there a dark mode?\n", encoding="utf-8")
    before = int8_index.read_bytes()
    calls = len(fake_encoder.calls)
    args = [arg.format(index=int8_index, new=new) for arg in command]
    code, out, err = run(*args, "--backend", "openvino", "--precision", "fp32")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "holds int8 embeddings, and this run encodes at fp32: give --precision int8" in err
    assert len(fake_encoder.calls) == calls and int8_index.read_bytes() == before
    code, _, err = run(*args, "--backend", "openvino", "--precision", "int8")
    assert code in (0, 1), err


def test_an_older_index_without_a_precision_is_fp32_and_says_so(built: Path) -> None:
    import json
    import zipfile

    with zipfile.ZipFile(built) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    meta = json.loads(contents["meta.json"])
    del meta["precision"]
    contents["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(built, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    code, _, err = run("-v", "search", str(built), "How do I log in?")
    assert code in (0, 1), err
    assert f"{built} names no precision (an older index): taken as fp32" in err
