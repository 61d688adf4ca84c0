"""`mine --engine ray` on a local Ray started once for this module (`tests/ray/conftest.py`), with the fake
encoder registered in every worker by `tests.ray_workers`: the same pairs as local `mine`, re-runs that read
the embeddings back, shards, and an encoder actor killed mid-run."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from dupfind.cli import app  # noqa: E402
from dupfind.pairs.mining import _mine  # noqa: E402
from dupfind.ray.mine import mine_embeddings_ray  # noqa: E402
from dupfind.vectors.backends import register_backend, unregister_backend  # noqa: E402
from dupfind.vectors.row_file import write_row_file  # noqa: E402
from tests.conftest import QUORA, FakeEncoder, needs_quora  # noqa: E402
from tests.ray_workers import DiesOnceEncoder, die_once_marker  # noqa: E402
from tests.vectors.test_cache import (  # noqa: E402
    damage_a_row_missing,
    damage_nan,
    damage_object_dtype,
    damage_scaled,
    damage_scaled_checksum_kept,
    damage_swapped_rows,
    damage_truncated,
    damage_wrong_dimension,
)

runner = CliRunner()
THRESHOLD = "0.7"


def synthetic_questions(n: int, seed: int = 0) -> list[str]:
    """Questions of random words: a third of them near-duplicates (one word changed), a few repeated with
    another case, so that mining meets pairs of every kind and the inverted-file index is approximate."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(400)]
    base = [" ".join(rng.choice(words, 8)) for _ in range(n * 2 // 3)]
    near = [text.replace(text.split()[int(rng.integers(8))], "zz", 1) for text in base[: n - len(base) - 20]]
    same = [text.upper() for text in base[:20]]
    return base + near + same


@pytest.fixture(scope="module")
def questions_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = synthetic_questions(3000)
    path = tmp_path_factory.mktemp("questions") / "questions.csv"
    pd.DataFrame({"id": [f"q{i}" for i in range(len(texts))], "question": texts}).to_csv(path, index=False)
    return path


def mine(*args: str, threshold: str = THRESHOLD) -> tuple[pd.DataFrame, str]:
    """`dupfind mine ARGS -t THRESHOLD --id-col id -o OUT.parquet` in this process: the pairs and stderr."""
    out = Path(args[args.index("-o") + 1])
    result = runner.invoke(app, ["mine", *args, "-t", threshold, "--id-col", "id"])
    assert result.exit_code == 0, (result.stderr, result.exception)
    return pd.read_parquet(out), result.stderr


@pytest.fixture(scope="module")
def clean_run(local_ray: None, questions_csv: Path) -> tuple[pd.DataFrame, str, Path]:
    """`mine --engine ray` once on the module's questions: its pairs, its stderr and its work folder."""
    register_backend("fake", lambda model: FakeEncoder())
    try:
        out = questions_csv.with_name("ray.parquet")
        frame, err = mine(str(questions_csv), "--engine", "ray", "--backend", "fake", "-o", str(out))
    finally:
        unregister_backend("fake")
    return frame, err, Path(f"{out}.work")


def pair_scores(frame: pd.DataFrame) -> pd.Series:
    return frame.set_index(["id_a", "id_b"]).score


def test_ray_finds_the_pairs_of_local_exact_mining(
    clean_run: tuple[pd.DataFrame, str, Path], use_fake_encoder: FakeEncoder, questions_csv: Path, tmp_path: Path
) -> None:
    on_ray, err, work = clean_run
    assert list((work / "rows").iterdir()) == []  # the file of the vectors mined is deleted after the run
    exact, _ = mine(str(questions_csv), "--index", "exact", "-o", str(tmp_path / "exact.parquet"))
    approximate, _ = mine(str(questions_csv), "--index", "ann", "-o", str(tmp_path / "ann.parquet"))
    assert list(on_ray.columns) == list(exact.columns)
    assert "2980 of 2980 distinct questions encoded now" in err
    ray_scores, exact_scores = pair_scores(on_ray), pair_scores(exact)
    common = ray_scores.index.intersection(exact_scores.index)
    assert len(common) >= 0.999 * len(exact_scores)
    assert len(exact_scores) > 1000 and (on_ray.score >= float(THRESHOLD)).all()
    assert set(ray_scores.index) <= set(exact_scores.index)  # nothing the exact search does not find
    np.testing.assert_allclose(ray_scores[common], exact_scores[common], atol=1e-5)
    # The same centroids and cells as the local inverted-file index: the very same pairs.
    assert set(ray_scores.index) == set(pair_scores(approximate).index)
    assert (on_ray.score.diff().dropna() <= 1e-5).all()  # best first


def test_a_rerun_encodes_only_new_questions(
    clean_run: tuple[pd.DataFrame, str, Path], use_fake_encoder: FakeEncoder, questions_csv: Path, tmp_path: Path
) -> None:
    first, _, kept = clean_run
    work = tmp_path / "work"
    shutil.copytree(kept, work)
    again, err = mine(str(questions_csv), "--engine", "ray", "--work-dir", str(work), "-o", str(tmp_path / "2.parquet"))
    assert "0 of 2980 distinct questions encoded now" in err
    assert use_fake_encoder.calls == []  # nor any token counted twice: the driver only counts tokens
    pd.testing.assert_frame_equal(first, again)
    frame = pd.read_csv(questions_csv)
    grown = pd.concat([frame, pd.DataFrame({"id": ["new1", "new2"], "question": ["brand new", "Brand  NEW"]})])
    grown.to_csv(tmp_path / "grown.csv", index=False)
    _, err = mine(
        str(tmp_path / "grown.csv"), "--engine", "ray", "--work-dir", str(work), "-o", str(tmp_path / "3.parquet")
    )
    assert "1 of 2981 distinct questions encoded now" in err


def test_an_encoder_actor_killed_mid_run_loses_and_duplicates_nothing(
    clean_run: tuple[pd.DataFrame, str, Path], use_fake_encoder: FakeEncoder, questions_csv: Path, tmp_path: Path
) -> None:
    clean = clean_run[0]
    register_backend("fake-dies-once", lambda model: DiesOnceEncoder())
    marker = die_once_marker()
    marker.touch()
    try:
        killed, _ = mine(
            str(questions_csv), "--engine", "ray", "--backend", "fake-dies-once",
            "--work-dir", str(tmp_path / "work"), "-o", str(tmp_path / "killed.parquet"),
        )  # fmt: skip
    finally:
        unregister_backend("fake-dies-once")
        marker.unlink(missing_ok=True)
    assert marker.with_name("died").exists()  # a worker did die
    marker.with_name("died").unlink()
    pd.testing.assert_frame_equal(clean, killed)


def test_an_encoder_that_cannot_load_on_the_cluster_is_one_line_and_exit_2(
    local_ray: None,
    use_fake_encoder: FakeEncoder,
    questions_csv: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    register_backend("fake-elsewhere", lambda model: FakeEncoder())  # it loads here, not on the workers
    try:
        out = tmp_path / "pairs.parquet"
        result = runner.invoke(app, ["mine", str(questions_csv), "--engine", "ray", "--backend", "fake-elsewhere",
                                     "-o", str(out)])  # fmt: skip
    finally:
        unregister_backend("fake-elsewhere")
    assert result.exit_code == 2, (result.stderr, result.exception)
    assert result.stderr.endswith("\ndupfind: error: model 'fake-elsewhere' is not installed on this node\n")
    assert result.stderr.count("\n") == 2 and "Traceback" not in result.stderr  # what was read, then the error
    assert "Traceback" not in capfd.readouterr().err  # nor on the process's own stderr (Ray's loggers)
    assert not out.exists()


def test_a_folder_or_a_glob_of_shards_reads_like_one_file(
    clean_run: tuple[pd.DataFrame, str, Path], use_fake_encoder: FakeEncoder, questions_csv: Path, tmp_path: Path
) -> None:
    whole, _, kept = clean_run
    frame = pd.read_csv(questions_csv)
    folder = tmp_path / "shards"
    folder.mkdir()
    for part, start in enumerate(range(0, len(frame), 1000)):
        frame.iloc[start : start + 1000].to_csv(folder / f"part-{part}.csv", index=False)
        with gzip.open(tmp_path / f"part-{part}.jsonl.gz", "wt") as handle:
            frame.iloc[start : start + 1000].to_json(handle, orient="records", lines=True)
    work = ["--work-dir", str(tmp_path / "work")]
    shutil.copytree(kept, tmp_path / "work")
    shards, _ = mine(str(folder), "--engine", "ray", *work, "-o", str(tmp_path / "shards.parquet"))
    globbed, _ = mine(str(tmp_path / "part-*.jsonl.gz"), "--engine", "ray", *work, "-o", str(tmp_path / "glob.parquet"))
    pd.testing.assert_frame_equal(whole, shards)
    pd.testing.assert_frame_equal(whole, globbed)


def test_a_folder_of_parquet_shards_mines_like_one_file_without_fsspec_http(
    clean_run: tuple[pd.DataFrame, str, Path], use_fake_encoder: FakeEncoder, questions_csv: Path, tmp_path: Path
) -> None:
    import sys

    from tests.ray_workers import FSSPEC_HTTP

    assert not hasattr(sys.modules[FSSPEC_HTTP], "HTTPFileSystem")  # as for Ray Data's probing on a fresh install
    whole, _, kept = clean_run
    frame = pd.read_csv(questions_csv)
    folder = tmp_path / "shards"
    folder.mkdir()
    for part, start in enumerate(range(0, len(frame), 750)):
        frame.iloc[start : start + 750].to_parquet(folder / f"part-{part}.parquet", index=False)
    assert len(list(folder.iterdir())) == 4
    work = tmp_path / "work"
    shutil.copytree(kept, work)
    shards, _ = mine(str(folder), "--engine", "ray", "--work-dir", str(work), "-o", str(tmp_path / "p.parquet"))
    pd.testing.assert_frame_equal(whole, shards)


@pytest.mark.parametrize(
    "damage",
    [
        damage_swapped_rows,
        damage_scaled,
        damage_scaled_checksum_kept,
        damage_nan,
        damage_wrong_dimension,
        damage_object_dtype,
        damage_truncated,
        damage_a_row_missing,
    ],
)
def test_a_damaged_shard_in_the_work_folder_is_dropped_and_encoded_again(
    clean_run: tuple[pd.DataFrame, str, Path],
    use_fake_encoder: FakeEncoder,
    questions_csv: Path,
    tmp_path: Path,
    damage: Callable[[Path, Path], None],
) -> None:
    whole, _, kept = clean_run
    work = tmp_path / "work"
    shutil.copytree(kept, work)
    [keys_file] = work.rglob("*.keys.npy")
    damage(keys_file, keys_file.with_name(keys_file.name.replace(".keys.npy", ".vectors.npy")))
    [keys_file] = work.rglob("*.keys.npy")
    again, err = mine(str(questions_csv), "--engine", "ray", "--work-dir", str(work), "-o", str(tmp_path / "2.parquet"))
    assert err.count("damaged shard") == 1 and str(keys_file) in err
    assert "2980 of 2980 distinct questions encoded now" in err
    pd.testing.assert_frame_equal(whole, again)
    assert keys_file not in set(work.rglob("*.keys.npy"))


def test_pairs_on_ray_written_as_a_folder_of_parquet_parts(
    clean_run: tuple[pd.DataFrame, str, Path], use_fake_encoder: FakeEncoder, questions_csv: Path, tmp_path: Path
) -> None:
    whole, _, kept = clean_run
    shutil.copytree(kept, tmp_path / "pairs.work")  # the default work folder of -o pairs/
    folder = tmp_path / "pairs"
    result = runner.invoke(
        app, ["mine", str(questions_csv), "--engine", "ray", "-o", f"{folder}/", "-t", THRESHOLD, "--id-col", "id"]
    )
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert "0 of 2980 distinct questions encoded now" in result.stderr
    assert [path.name for path in folder.iterdir()] == ["part-00000.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(folder), whole)


def test_index_built_on_ray_is_the_local_index(
    clean_run: tuple[pd.DataFrame, str, Path], use_fake_encoder: FakeEncoder, questions_csv: Path, tmp_path: Path
) -> None:
    from dupfind.pairs.index import open_index

    kept = clean_run[2]
    shutil.copytree(kept, tmp_path / "work")
    built = {}
    for name, engine in {"local": [], "ray": ["--engine", "ray", "--work-dir", str(tmp_path / "work")]}.items():
        out = tmp_path / f"{name}.dfi"
        result = runner.invoke(app, ["index", "build", str(questions_csv), "--id-col", "id", *engine, "-o", str(out)])
        assert result.exit_code == 0, (result.stderr, result.exception)
        built[name] = open_index(str(out))
    assert "20 of 3000 distinct questions encoded now" in result.stderr  # the 20 upper-cased ones are new
    local, on_ray = built["local"], built["ray"]
    assert on_ray.ids == local.ids and on_ray.texts == local.texts and len(local) == 3000
    assert (on_ray.model, on_ray.fingerprint, on_ray.thresholds) == (local.model, local.fingerprint, local.thresholds)
    np.testing.assert_allclose(on_ray.embeddings, local.embeddings, atol=1e-6)


@pytest.mark.parametrize("fault", ["none", "a mining task's worker dies once"])
def test_mining_on_ray_is_the_local_inverted_file_index(local_ray: None, fault: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(300, 32)).astype(np.float32)
    rows = centres[rng.integers(300, size=5000)] + 0.3 * rng.normal(size=(5000, 32)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    marker = die_once_marker().with_name("die-once-scoring")
    if fault != "none":
        marker.touch()
    seen: list[tuple[int, int]] = []
    try:
        (local, local_truncated), (remote, remote_truncated) = (
            _mine(rows, 0.8, 5, None, "ann"),
            mine_embeddings_ray(
                write_row_file(tmp_path / "rows.npy", len(rows), [rows[:1000], rows[1000:]]),
                0.8,
                5,
                progress=lambda done, total: seen.append((done, total)),
            ),
        )
    finally:
        marker.unlink(missing_ok=True)
    died = marker.with_name("died-scoring")
    assert died.exists() == (fault != "none")  # a worker did die, and the task was run again
    died.unlink(missing_ok=True)
    cells = {total for _, total in seen}
    assert len(cells) == 1 and sum(done for done, _ in seen) == cells.pop() > 1  # every cell, each once
    assert local.truncated > 0 and len(local) > 1000
    np.testing.assert_array_equal(local.left, remote.left)
    np.testing.assert_array_equal(local.right, remote.right)
    np.testing.assert_array_equal(local.scores, remote.scores)
    np.testing.assert_array_equal(local_truncated, remote_truncated)
    assert local.truncated == remote.truncated


def test_every_readme_command_on_ray_runs(
    local_ray: None, use_fake_encoder: FakeEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_readme import ROOT, readme_commands

    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    commands = [words for words in readme_commands() if "--engine" in words]
    assert len(commands) >= 2
    for words in commands:
        result = runner.invoke(app, words)
        assert result.exit_code == 0, (words, result.stderr, result.exception)
        assert "Traceback" not in result.stderr


@pytest.mark.slow
@needs_quora()
def test_the_real_model_on_ray_finds_the_pairs_of_local_exact_mining(
    local_ray: None, real_encoder: object, tmp_path: Path
) -> None:
    frame = pd.read_csv(QUORA / "dev-questions.csv").head(3000)
    frame.to_csv(tmp_path / "dev.csv", index=False)
    options = ["--backend", "openvino", "--id-col", "id", "-t", "0.8"]
    outputs = {"exact": ["--index", "exact"], "ray": ["--engine", "ray"]}
    for name, engine in outputs.items():
        result = runner.invoke(
            app, ["mine", str(tmp_path / "dev.csv"), *options, *engine, "-o", str(tmp_path / f"{name}.parquet")]
        )
        assert result.exit_code == 0, (result.stderr, result.exception)
    exact = pair_scores(pd.read_parquet(tmp_path / "exact.parquet"))
    on_ray = pair_scores(pd.read_parquet(tmp_path / "ray.parquet"))
    common = on_ray.index.intersection(exact.index)
    assert len(exact) > 100 and len(common) >= 0.999 * len(exact)
    assert set(on_ray.index) <= set(exact.index)
    np.testing.assert_allclose(on_ray[common], exact[common], atol=1e-5)
