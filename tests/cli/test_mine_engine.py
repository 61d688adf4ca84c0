"""`mine --engine`'s arguments, checked before Ray starts or the model loads; no Ray needed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dupfind.cli import app
from tests.cli.runner import runner
from tests.conftest import FakeEncoder


@pytest.fixture
def questions(tmp_path: Path) -> Path:
    path = tmp_path / "questions.txt"
    path.write_text("How do I reset my password?\nhow do i reset my password\n", encoding="utf-8")
    return path


def test_engine_ray_without_ray_installed_is_one_line_and_exit_2(
    use_fake_encoder: FakeEncoder, questions: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = runner.invoke(app, ["mine", str(questions), "--engine", "ray", "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 2
    assert (
        result.stderr == "dupfind: error: --engine ray needs Ray, which is not installed: pip install 'dupfind[ray]'\n"
    )
    assert use_fake_encoder.calls == [] and not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "spark"], "unknown --engine 'spark'"),
        (["--work-dir", "w"], "--ray-address, --work-dir and --gpus-per-actor go with --engine ray"),
        (["--ray-address", "auto"], "go with --engine ray"),
        (["--engine", "ray", "--index", "exact", "--work-dir", "w"], "--index exact is local only"),
        (["--engine", "ray", "--against", "x.csv", "--work-dir", "w"], "--against is local only"),
        (["--engine", "ray"], "give one, or --output"),
        (["--engine", "ray", "--gpus-per-actor", "-1", "--work-dir", "w"], "--gpus-per-actor must be at least 0"),
        (["--engine", "ray", "--gpus-per-actor", "1", "--work-dir", "w"], "--gpus-per-actor needs --backend torch"),
        (["--engine", "ray", "--device", "cuda", "--work-dir", "w"], "puts the encoder actors on GPUs"),
        (["--engine", "ray", "--work-dir", "pairs/work", "-o", "pairs/"], "is inside the output folder pairs/"),
    ],
)
def test_bad_engine_options_fail_before_anything_runs(
    use_fake_encoder: FakeEncoder, questions: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["mine", str(questions), *args])
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert use_fake_encoder.calls == []


@pytest.mark.parametrize(
    ("command", "source", "message"),
    [
        (["mine"], "missing.csv", "missing.csv: no such file, folder or matching files"),
        (["mine"], "-", "--engine ray reads files, not stdin"),
        (["index", "build"], "-", "--engine ray reads files, not stdin"),
    ],
)
def test_engine_ray_checks_its_input_before_anything_runs(
    use_fake_encoder: FakeEncoder, tmp_path: Path, command: list[str], source: str, message: str
) -> None:
    output = str(tmp_path / ("out.dfi" if "index" in command else "out.csv"))
    result = runner.invoke(app, [*command, source, "--engine", "ray", "-o", output])
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert use_fake_encoder.calls == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("command", "work"),
    [
        (["mine"], ["--work-dir", "{input}/work"]),
        (["mine"], ["--work-dir", "{input}"]),
        (["mine"], []),  # the default work folder, beside an output in the input folder
        (["index", "build"], ["--work-dir", "{input}/sub/work"]),
        (["index", "build"], []),
    ],
)
def test_a_work_folder_in_the_input_folder_is_refused_before_anything_runs(
    use_fake_encoder: FakeEncoder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    work: list[str],
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # refused before Ray is even needed
    folder = tmp_path / "questions"
    folder.mkdir()
    (folder / "part-0.txt").write_text("How do I reset my password?\nWhat is Ray?\n", encoding="utf-8")
    output = folder / ("corpus.dfi" if "index" in command else "pairs.csv")
    args = [word.format(input=folder) for word in work]
    result = runner.invoke(app, [*command, str(folder), "--engine", "ray", *args, "-o", str(output)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and f"is inside the input folder {folder}" in result.stderr
    assert use_fake_encoder.calls == [] and [path.name for path in folder.iterdir()] == ["part-0.txt"]


@pytest.mark.parametrize(
    ("command", "source", "output", "message"),
    [
        (["mine"], "{input}", "{input}/pairs.csv", "is inside the input folder"),
        (["mine"], "{input}", "{input}/pairs/", "is inside the input folder"),
        (["mine"], "{input}/*.csv", "{input}/pairs.csv", "matches the input"),
        (["mine"], "{input}/**/part-*", "{input}/pairs/", "matches the input"),  # its part-00000.parquet
        (["index", "build"], "{input}/*", "{input}/corpus.dfi", "matches the input"),
    ],
)
def test_an_output_that_the_next_run_would_read_as_input_is_refused_before_anything_runs(
    use_fake_encoder: FakeEncoder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    source: str,
    output: str,
    message: str,
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # refused before Ray is even needed
    folder = questions_folder(tmp_path)
    args = [source.format(input=folder), "--engine", "ray", "--work-dir", str(tmp_path / "work")]
    result = runner.invoke(app, [*command, *args, "-o", output.format(input=folder)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert use_fake_encoder.calls == [] and sorted(path.name for path in tmp_path.iterdir()) == ["questions"]
    assert [path.name for path in folder.iterdir()] == ["part-0.csv"]


@pytest.mark.parametrize("output", ["{tmp}/pairs.csv", "{tmp}/questions-pairs/", "{tmp}/questions/../p.csv"])
def test_an_output_beside_the_input_glob_passes_the_check(
    use_fake_encoder: FakeEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # the next check, Ray's presence, is the one that fails
    folder = questions_folder(tmp_path)
    args = [str(folder / "*.csv"), "--engine", "ray", "--work-dir", str(tmp_path / "work")]
    result = runner.invoke(app, ["mine", *args, "-o", output.format(tmp=tmp_path)])
    assert result.exit_code == 2
    assert "--engine ray needs Ray, which is not installed" in result.stderr


def questions_folder(tmp_path: Path) -> Path:
    """A folder of one CSV file of questions."""
    folder = tmp_path / "questions"
    folder.mkdir()
    (folder / "part-0.csv").write_text("question\nHow do I reset my password?\nWhat is Ray?\n", encoding="utf-8")
    return folder
