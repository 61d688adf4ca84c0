"""The index file: round trip, search equal to brute force, growth, model check, corrupt files."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dupfind.errors import DupfindError
from dupfind.index import Index, is_index, new_index, open_index, save_index
from dupfind.model import Thresholds, resolve_model
from tests.test_mining import clustered_embeddings


def small_index(n: int = 200, seed: int = 0) -> Index:
    embeddings = clustered_embeddings(n, seed)
    ids, texts = [f"q{i}" for i in range(n)], [f"text {i}" for i in range(n)]
    return Index(ids, texts, embeddings, "m", "fp", Thresholds(0.7, 0.8))


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    path = str(tmp_path / "corpus.dfi")
    index = small_index()
    save_index(index, path)
    opened = open_index(path)
    assert opened.ids == index.ids and opened.texts == index.texts
    assert np.array_equal(opened.embeddings, index.embeddings) and opened.embeddings.dtype == np.float32
    assert (opened.model, opened.fingerprint, opened.thresholds) == ("m", "fp", Thresholds(0.7, 0.8))
    assert is_index(path) and not is_index(str(tmp_path / "questions.csv"))
    assert [p.name for p in tmp_path.iterdir()] == ["corpus.dfi"]


def test_the_file_is_plain_and_pickle_free(tmp_path: Path) -> None:
    path = tmp_path / "corpus.dfi"
    save_index(small_index(10), str(path))
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["embeddings.npy", "meta.json", "questions.parquet"]
        meta = json.loads(archive.read("meta.json"))
        embeddings = np.load(io.BytesIO(archive.read("embeddings.npy")), allow_pickle=False)
    assert meta["format"] == "dupfind-index" and meta["count"] == 10 and meta["dim"] == embeddings.shape[1]


def test_search_over_an_index_equals_brute_force(tmp_path: Path) -> None:
    path = str(tmp_path / "corpus.dfi")
    save_index(small_index(500, seed=7), path)
    index = open_index(path)
    queries = clustered_embeddings(30, seed=8)
    found = index.search(queries, k=5)
    scores = queries @ index.embeddings.T
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :5]
    assert np.array_equal(found.rows, expected)
    assert np.allclose(found.scores, np.take_along_axis(scores, expected, axis=1), atol=1e-6)


def test_add_appends_and_mixed_ids_become_strings(tmp_path: Path) -> None:
    path = str(tmp_path / "corpus.dfi")
    index = small_index(20)
    grown = index.add([7, 8], ["new a", "new b"], clustered_embeddings(4)[:2])
    save_index(grown, path)
    opened = open_index(path)
    assert len(opened) == 22 and opened.ids[-2:] == ["7", "8"] and opened.texts[-1] == "new b"
    assert np.array_equal(opened.embeddings[:20], index.embeddings)
    with pytest.raises(DupfindError, match="dimensions"):
        index.add([1], ["x"], np.ones((1, 3), dtype=np.float32))


def test_new_index_records_the_model_and_its_thresholds() -> None:
    ref = resolve_model(None)
    index = new_index(ref, [1, 2], ["a", "b"], clustered_embeddings(4)[:2])
    assert index.model == "all-MiniLM-L6-v2" and len(index.fingerprint) == 16
    assert index.thresholds.pair > 0.5
    index.check_model(ref)


def test_a_different_model_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "config.json").write_text("{}", encoding="utf-8")
    index = new_index(resolve_model(None), [1], ["a"], clustered_embeddings(4)[:1])
    with pytest.raises(DupfindError, match=r"built with model 'all-MiniLM-L6-v2'.*not '.*other-model'"):
        index.check_model(resolve_model(str(other)), "corpus.dfi")


def test_a_failed_save_leaves_the_old_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "corpus.dfi"
    save_index(small_index(10), str(path))
    before = path.read_bytes()

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("numpy.lib.format.write_array", fail)
    with pytest.raises(DupfindError, match="No space left"):
        save_index(small_index(20), str(path))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["corpus.dfi"]


def rewrite(path: Path, **members: bytes) -> None:
    """Rewrite an index with some members replaced (None drops one)."""
    with zipfile.ZipFile(path) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    contents.update(members)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in contents.items():
            if data is not None:
                archive.writestr(name, data)


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ({"meta.json": None}, r"not a dupfind index \(no meta.json\)"),
        ({"meta.json": b"{not json"}, "corrupt dupfind index"),
        ({"embeddings.npy": None}, "no embeddings.npy"),
        ({"meta.json": b'{"format": "other"}'}, "does not describe a dupfind index"),
        ({"embeddings.npy": npy(np.ones((3, 4), dtype=np.float32))}, "meta.json says 10×"),
        ({"embeddings.npy": npy(np.array([{"a": 1}] * 10, dtype=object))}, "corrupt dupfind index"),
        ({"questions.parquet": b"PAR1 broken"}, "corrupt dupfind index"),
        ({"questions.parquet": parquet(pd.DataFrame({"q": list("abcdefghij")}))}, r"has columns \['q'\]"),
    ],
)
def test_corrupt_indexes_are_one_line_errors(tmp_path: Path, damage: dict[str, bytes], message: str) -> None:
    path = tmp_path / "corpus.dfi"
    save_index(small_index(10), str(path))
    rewrite(path, **damage)
    with pytest.raises(DupfindError, match=message) as caught:
        open_index(str(path))
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_missing_and_non_index_files(tmp_path: Path) -> None:
    with pytest.raises(DupfindError, match="no such index"):
        open_index(str(tmp_path / "nope.dfi"))
    with pytest.raises(DupfindError, match="is a directory"):
        open_index(str(tmp_path))
    text = tmp_path / "questions.dfi"
    text.write_text("just text\n", encoding="utf-8")
    with pytest.raises(DupfindError, match="not a zip file"):
        open_index(str(text))
