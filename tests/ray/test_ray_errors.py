"""An error that crosses Ray (a worker's `DupfindError`, `OSError`, `ValueError`, an actor that cannot start) is
one line on stderr naming the file where known, exit 2, no traceback and no colour codes, on a local Ray started
once for this module (`tests/ray/conftest.py`), with the faults of `tests.ray_workers`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("ray")
pytest.importorskip("ray.data")

from dupfind.cli import app
from dupfind.vectors.backends import register_backend, unregister_backend
from tests.conftest import FakeEncoder
from tests.ray.test_ray_engine import synthetic_questions
from tests.ray_workers import die_once_marker

runner = CliRunner()


@pytest.fixture(scope="module")
def questions_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = synthetic_questions(300)
    path = tmp_path_factory.mktemp("questions") / "questions.csv"
    pd.DataFrame({"id": range(len(texts)), "question": texts}).to_csv(path, index=False)
    return path


@pytest.fixture
def scoring_raises() -> Iterator[Callable[[str], None]]:
    """Make every mining task raise the error of `tests.ray_workers.SCORING_ERRORS` named."""
    marker = die_once_marker().with_name("scoring-raises")
    yield marker.write_text
    marker.unlink(missing_ok=True)


def shard_folder_is_a_file(work: Path) -> list[str]:
    """The encoder actors cannot make the folder of their shards: a file has its name."""
    (work / "embeddings").mkdir(parents=True)
    (work / "embeddings" / FakeEncoder.fingerprint).touch()
    return []


def run_on_ray(questions: Path, work: Path, *args: str) -> tuple[int, str, str]:
    out = work.with_name("pairs.csv")
    result = runner.invoke(
        app, ["mine", str(questions), "--engine", "ray", "--work-dir", str(work), "-o", str(out), "-q", *args]
    )
    assert not out.exists()
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("an encoder actor cannot write its shard", "{work}/embeddings/fake-bag-of-words: File exists"),
        ("a mining task's disk is full", "/spill/cells.npy: No space left on device"),
        ("an encoder actor cannot read its model", "/models/unreadable/model.safetensors: Permission denied"),
        (
            "a mining task has a bug",
            "unexpected error: on the Ray cluster: ValueError: a mining task's bug (run with -v for the traceback)",
        ),
    ],
)
def test_an_error_on_a_worker_is_one_line_naming_the_file_and_exit_2(
    local_ray: None,
    use_fake_encoder: FakeEncoder,
    questions_csv: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    scoring_raises: Callable[[str], None],
    fault: str,
    message: str,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    work = tmp_path / "work"
    args = []
    if "shard" in fault:
        shard_folder_is_a_file(work)
    elif "disk" in fault:
        scoring_raises("OSError")
    elif "bug" in fault:
        scoring_raises("ValueError")
    else:
        register_backend("fake-unreadable", lambda model: FakeEncoder())  # it loads here, not on the workers
        args = ["--backend", "fake-unreadable"]
    try:
        code, out, err = run_on_ray(questions_csv, work, *args)
    finally:
        unregister_backend("fake-unreadable")
    assert (code, err) == (2, f"dupfind: error: {message.format(work=work)}\n")
    if "mining" in fault:  # the file of the vectors mined is deleted on failure too
        assert list((work / "rows").iterdir()) == []
    process = capfd.readouterr()
    assert "Traceback" not in process.err and "\x1b" not in out + process.out + process.err


def test_with_verbose_a_worker_bug_shows_its_traceback_without_colour_codes(
    local_ray: None,
    use_fake_encoder: FakeEncoder,
    questions_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scoring_raises: Callable[[str], None],
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    scoring_raises("ValueError")
    result = runner.invoke(
        app,
        [
            "-v",
            "mine",
            str(questions_csv),
            "--engine",
            "ray",
            "--work-dir",
            str(tmp_path / "w"),
            "-o",
            str(tmp_path / "p.csv"),
        ],
    )
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "ValueError: a mining task's bug" in result.stderr
    assert "\x1b" not in result.stderr
