"""The index file: round trip, search equal to brute force, growth, model check, corrupt files."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dupfind.errors import DupfindError
from dupfind.pairs.index import Index, is_index, new_index, open_index, save_index
from dupfind.thresholds import Thresholds
from dupfind.vectors.model import DEFAULT_MODEL, resolve_model
from tests.pairs.test_mining import clustered_embeddings


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
    assert index.model == DEFAULT_MODEL and len(index.fingerprint) == 16
    assert index.thresholds.pair > 0.5
    index.check_model(ref)


def test_a_different_model_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "config.json").write_text("{}", encoding="utf-8")
    index = new_index(resolve_model(None), [1], ["a"], clustered_embeddings(4)[:1])
    with pytest.raises(DupfindError, match=rf"built with model '{DEFAULT_MODEL}'.*not '.*other-model'"):
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


def meta_of(path: Path) -> dict[str, object]:
    with zipfile.ZipFile(path) as archive:
        meta: dict[str, object] = json.loads(archive.read("meta.json"))
    return meta


def with_meta(path: Path, **fields: object) -> bytes:
    return json.dumps({**meta_of(path), **fields}).encode()


def npy_header(shape: tuple[int, ...], dtype: str = "<f4", fortran: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": fortran, "shape": shape})
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"thresholds": {"pair": "high", "mining": 0.8}}, "pair threshold is not a number"),
        ({"thresholds": {"pair": 0.7, "mining": None}}, "mining threshold is not a number"),
        ({"thresholds": {"pair": 7, "mining": 0.8}}, "pair threshold is not a number from -1 to 1"),
        ({"thresholds": [0.7, 0.8]}, "lacks thresholds"),
        ({"count": "10"}, "count is not a number"),
        ({"count": -1}, "count is not a number"),
        ({"dim": True}, "dim is not a number"),
        ({"model": ["m"]}, "model is not a name"),
        ({"fingerprint": 12}, "fingerprint is not a name"),
        ({"version": "1"}, "this dupfind reads version 1"),
    ],
)
def test_every_meta_field_is_checked(tmp_path: Path, fields: dict[str, object], message: str) -> None:
    path = tmp_path / "corpus.dfi"
    save_index(small_index(10), str(path))
    rewrite(path, **{"meta.json": with_meta(path, **fields)})
    with pytest.raises(DupfindError, match=message) as caught:
        open_index(str(path))
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_huge_meta_json_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "corpus.dfi"
    save_index(small_index(10), str(path))
    meta = meta_of(path)
    meta["padding"] = " " * (2 << 20)
    with zipfile.ZipFile(path) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("meta.json", json.dumps(meta))
        archive.writestr("embeddings.npy", contents["embeddings.npy"])
        archive.writestr("questions.parquet", contents["questions.parquet"])
    assert path.stat().st_size < 100_000
    with pytest.raises(DupfindError, match=r"meta\.json is 2097"):
        open_index(str(path))


def test_a_decompression_bomb_is_not_inflated(tmp_path: Path) -> None:
    path = tmp_path / "corpus.dfi"
    save_index(small_index(10), str(path))
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("padding.bin", bytes(64 << 20))
    assert path.stat().st_size < 1_000_000
    with pytest.raises(DupfindError, match=r"padding\.bin inflates"):
        open_index(str(path))


@pytest.mark.parametrize(
    ("header", "count", "message"),
    [
        (npy_header((10**11, 32)), 10**11, "embeddings.npy is .* bytes, not"),
        (npy_header((10**11, 32)), 10, r"embeddings float32\[100000000000, 32\]; meta.json says 10×32"),
        (npy_header((10, 32), "<f8"), 10, "meta.json says 10×32 float32"),
        (npy_header((10, 32), fortran=True), 10, "Fortran"),
        (b"\x93NUMPY\x09\x00", 10, "unsupported .npy version"),
    ],
)
def test_the_embeddings_header_is_checked_before_reading(
    tmp_path: Path, header: bytes, count: int, message: str
) -> None:
    path = tmp_path / "corpus.dfi"
    index = small_index(10)
    save_index(index, str(path))
    rewrite(path, **{"embeddings.npy": header + index.embeddings.tobytes(), "meta.json": with_meta(path, count=count)})
    with pytest.raises(DupfindError, match=message) as caught:
        open_index(str(path))
    assert "\n" not in str(caught.value)


def test_non_finite_embeddings_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "corpus.dfi"
    index = small_index(10)
    index.embeddings[2, 3] = np.inf
    save_index(index, str(path))
    with pytest.raises(DupfindError, match="not finite"):
        open_index(str(path))


def test_a_model_named_by_an_index_is_never_fetched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    monkeypatch.setenv("DUPFIND_ALLOW_DOWNLOADS", "1")  # even then
    name = "attacker/evil-model"
    forged = hashlib.sha256(name.encode()).hexdigest()[:16]
    index = Index(["q1"], ["text"], clustered_embeddings(4)[:1], name, forged, Thresholds(0.7, 0.8))
    with pytest.raises(DupfindError, match=r"not a local model directory here.*--model"):
        index.find_model(None, "corpus.dfi")
    with pytest.raises(DupfindError, match="built with model 'attacker/evil-model'"):
        index.find_model("all-MiniLM-L6-v2", "corpus.dfi")


def test_find_model_takes_the_builtin_or_a_local_directory_with_the_right_content(tmp_path: Path) -> None:
    builtin = resolve_model(None)
    assert new_index(builtin, [1], ["a"], clustered_embeddings(4)[:1]).find_model(None) == builtin
    local = tmp_path / "local-model"
    local.mkdir()
    (local / "config.json").write_text("{}", encoding="utf-8")
    index = new_index(resolve_model(str(local)), [1], ["a"], clustered_embeddings(4)[:1])
    assert index.find_model(None).path == local.resolve()
    (local / "config.json").write_text('{"changed": true}', encoding="utf-8")
    with pytest.raises(DupfindError, match="use that model or rebuild the index"):
        index.find_model(None)


def test_concurrent_adds_lose_nothing(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from dupfind.pairs.index import add_to_index

    path = str(tmp_path / "corpus.dfi")
    index = small_index(10)
    save_index(index, path)
    rows = clustered_embeddings(40, seed=3)

    def add(batch: int) -> None:
        ids = [f"b{batch}-{row}" for row in range(4)]
        texts = [f"batch {batch} text {row}" for row in range(4)]
        add_to_index(path, ids, texts, rows[4 * batch : 4 * batch + 4], index.fingerprint)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(add, range(10)))
    grown = open_index(path)
    assert len(grown) == 50 and len(set(grown.ids)) == 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.dfi"]


ADD_IN_A_PROCESS = """
import sys, time
import numpy as np
from dupfind.pairs.index import add_to_index, open_index
path, name = sys.argv[1], sys.argv[2]
fingerprint = open_index(path).fingerprint
for batch in range(8):
    rows = np.eye(32, dtype=np.float32)[batch : batch + 2]
    add_to_index(path, [1, 2], [f"{name} {batch} a", f"{name} {batch} b"], rows, fingerprint, number_on=True)
"""


def test_two_processes_adding_at_once_lose_nothing(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    path = str(tmp_path / "corpus.dfi")
    save_index(small_index(10), path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    writers = [
        subprocess.Popen([sys.executable, "-c", ADD_IN_A_PROCESS, path, name], env=env, stderr=subprocess.PIPE)
        for name in ("first", "second")
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err.decode()
    grown = open_index(path)
    assert len(grown) == 10 + 2 * 8 * 2
    assert len(set(map(str, grown.ids))) == len(grown)  # numbered on under the lock: no id twice
    assert sum(text.startswith("first") for text in grown.texts) == 16


def test_locked_waits_for_the_holder_and_follows_the_replaced_file(tmp_path: Path) -> None:
    import threading
    import time

    from dupfind.pairs.index import locked

    path = str(tmp_path / "corpus.dfi")
    save_index(small_index(10), path)
    order: list[str] = []
    holding = threading.Event()

    def second() -> None:
        holding.wait()
        with locked(path):
            order.append("second")
            assert len(open_index(path)) == 20

    thread = threading.Thread(target=second)
    thread.start()
    with locked(path):
        holding.set()
        time.sleep(0.3)
        save_index(small_index(20), path)  # replaces the locked file
        order.append("first")
    thread.join(10)
    assert order == ["first", "second"]


def test_add_to_index_refuses_clashing_ids_and_another_model(tmp_path: Path) -> None:
    from dupfind.pairs.index import add_to_index

    path = str(tmp_path / "corpus.dfi")
    index = small_index(10)
    save_index(index, path)
    rows = clustered_embeddings(4, seed=5)[:2]
    with pytest.raises(DupfindError, match=r"1 ids of new.csv are already in .*corpus.dfi \(q3\)"):
        add_to_index(path, ["q3", "z"], ["a", "b"], rows, index.fingerprint, source="new.csv")
    with pytest.raises(DupfindError, match="another model"):
        add_to_index(path, ["y", "z"], ["a", "b"], rows, "other-fingerprint")
    assert len(open_index(path)) == 10


def test_a_compression_bomb_in_questions_parquet_is_refused_before_decompressing(tmp_path: Path) -> None:
    """questions.parquet is stored in the zip (the zip check passes) but its pages inflate ~1000×: its metadata
    declares that, and the index is refused on it before a page is decompressed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "corpus.dfi"
    save_index(small_index(10), str(path))
    buffer = io.BytesIO()
    texts = [f"{row} " + "a" * (4 << 20) for row in range(10)]  # 40 MB of text, distinct rows
    pq.write_table(pa.table({"id": [f"q{i}" for i in range(10)], "question": texts}), buffer, compression="zstd")
    del texts
    bomb = buffer.getvalue()
    assert len(bomb) < 100_000
    rewrite(path, **{"questions.parquet": bomb})
    with pytest.raises(DupfindError, match=r"questions\.parquet declares 4\d{7} bytes uncompressed") as caught:
        open_index(str(path))
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_the_row_count_of_questions_parquet_is_checked_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "corpus.dfi"
    save_index(small_index(10), str(path))
    rewrite(path, **{"meta.json": with_meta(path, count=5), "embeddings.npy": npy(np.ones((5, 32), np.float32))})
    with pytest.raises(DupfindError, match=r"questions\.parquet has 10 rows; meta\.json says 5"):
        open_index(str(path))


def test_an_index_of_questions_without_dimensions_is_refused(tmp_path: Path) -> None:
    """dim 0 would let meta.json declare any number of rows at no cost in embeddings.npy."""
    path = tmp_path / "corpus.dfi"
    save_index(small_index(10), str(path))
    rewrite(path, **{"meta.json": with_meta(path, dim=0), "embeddings.npy": npy(np.ones((10, 0), np.float32))})
    with pytest.raises(DupfindError, match="dim is not a number of dimensions"):
        open_index(str(path))


def test_the_precision_round_trips_and_an_older_index_is_fp32(tmp_path: Path) -> None:
    path = tmp_path / "corpus.dfi"
    save_index(replace(small_index(10), precision="int8"), str(path))
    assert meta_of(path)["precision"] == "int8"
    assert (open_index(str(path)).precision, open_index(str(path)).named_precision) == ("int8", True)
    old = {key: value for key, value in meta_of(path).items() if key != "precision"}
    rewrite(path, **{"meta.json": json.dumps(old).encode()})
    assert (open_index(str(path)).precision, open_index(str(path)).named_precision) == ("fp32", False)
    rewrite(path, **{"meta.json": with_meta(path, precision="fp4")})
    with pytest.raises(DupfindError, match="unknown precision 'fp4'"):
        open_index(str(path))


def test_new_index_keeps_the_thresholds_of_its_precision(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}", encoding="utf-8")
    int8 = {"pair_threshold": 0.6, "mining_threshold": 0.65}
    thresholds = {"pair_threshold": 0.7, "mining_threshold": 0.75, "int8": int8}
    (model / "dupfind.json").write_text(json.dumps(thresholds), encoding="utf-8")
    index = new_index(resolve_model(str(model)), ["a"], ["text"], np.ones((1, 4), np.float32), precision="int8")
    assert (index.precision, index.thresholds) == ("int8", Thresholds(0.6, 0.65))
    with pytest.raises(DupfindError, match="holds int8 embeddings, and this run encodes at fp32: give --precision"):
        index.check_precision("fp32", "corpus.dfi")
