"""Every output and every input of a command is checked before the model loads: a mistake costs no encoding."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dupfind.cli.model_options import EmbedderOptions
from dupfind.errors import DupfindError
from dupfind.vectors.backends import register_backend
from dupfind.vectors.embedder import Embedder
from tests.cli.runner import run
from tests.conftest import FakeEncoder, FakePairScorer

QUESTIONS = "id,question\n1,red apple pie\n2,Red apple pie\n3,why is the sky blue\n4,how do magnets work\n"
PAIRS = "question1,question2,is_duplicate\nred apple pie,Red apple pie,1\nsky blue,how do magnets work,0\n"
CLUSTERED = "question,cluster\nred apple pie,1\nRed apple pie,1\nwhy is the sky blue,2\nhow do magnets work,3\n"

OUTPUTS = {
    "mine -o": ["mine", "{questions}", "-o", "{bad}/pairs.csv"],
    "mine -o FOLDER/": ["mine", "{questions}", "-o", "{bad}/pairs/"],
    "clusters -o": ["clusters", "{questions}", "-o", "{bad}/groups.csv"],
    "dedupe -o": ["dedupe", "{questions}", "-o", "{bad}/unique.csv"],
    "dedupe --map": ["dedupe", "{questions}", "-o", "{tmp}/unique.csv", "--map", "{bad}/map.csv"],
    "search -o": ["search", "{questions}", "--queries", "{questions}", "-o", "{bad}/hits.csv"],
    "index build -o": ["index", "build", "{questions}", "-o", "{bad}/corpus.dfi"],
    "eval pairs -o": ["eval", "pairs", "{pairs}", "-o", "{bad}/report.json"],
    "eval pairs -o PAGE": ["eval", "pairs", "{pairs}", "-o", "{bad}/page.html"],
    "eval pairs --plot": ["eval", "pairs", "{pairs}", "--plot", "{bad}/scores.png"],
    "eval retrieval -o": ["eval", "retrieval", "{clustered}", "-o", "{bad}/report.json"],
    "eval mining -o": ["eval", "mining", "{clustered}", "-o", "{bad}/report.json"],
    "label -o": ["label", "{questions}", "-o", "{bad}/labels.csv"],
    "calibrate --thresholds": ["calibrate", "--pairs", "{pairs}", "--thresholds", "{bad}/dupfind.toml"],
}


@pytest.fixture
def loads(use_fake_encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str | None]]:
    """The models loaded (the fake encoder's `calls` say what it encoded)."""
    loaded: list[str | None] = []
    load = EmbedderOptions.load

    def counted(self: EmbedderOptions, model: str | None = None) -> Embedder:
        loaded.append(model)
        return load(self, model)

    monkeypatch.setattr(EmbedderOptions, "load", counted)
    yield loaded


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, str]:
    files = {"questions": QUESTIONS, "pairs": PAIRS, "clustered": CLUSTERED}
    for name, text in files.items():
        (tmp_path / f"{name}.csv").write_text(text, encoding="utf-8")
    return {name: str(tmp_path / f"{name}.csv") for name in files} | {"tmp": str(tmp_path)}


def unwritable(tmp_path: Path, kind: str) -> Path:
    """A folder that cannot take a new file: a file in its place, a folder that is not there, or a read-only one
    (for root, who writes in any folder of mode 555, sysfs: no one creates a file there)."""
    if kind == "read-only" and os.geteuid() == 0:
        return _sysfs_or_skip()
    bad = tmp_path / kind
    if kind == "a file":
        bad.write_text("not a folder", encoding="utf-8")
    elif kind == "read-only":
        bad.mkdir(mode=0o555)
    return bad


def _sysfs_or_skip() -> Path:
    try:
        (Path("/sys") / "dupfind-probe").touch()
    except OSError:
        return Path("/sys")
    pytest.skip("root writes in a read-only folder, and /sys takes files here")


def listing(folder: Path) -> dict[str, bytes | None]:
    return {str(path): path.read_bytes() if path.is_file() else None for path in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("kind", ["a file", "missing", "read-only"])
@pytest.mark.parametrize("command", OUTPUTS)
def test_an_output_that_cannot_be_written_fails_before_the_model_loads(
    loads: list[str | None],
    use_fake_encoder: FakeEncoder,
    inputs: dict[str, str],
    tmp_path: Path,
    kind: str,
    command: str,
) -> None:
    bad = unwritable(tmp_path, kind)
    args = [arg.format(bad=bad, **inputs) for arg in OUTPUTS[command]]
    before = listing(tmp_path)
    code, _, err = run(*args, "--no-cache")
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith(f"dupfind: error: {bad}/"), err
    assert loads == [] and use_fake_encoder.calls == []
    assert listing(tmp_path) == before


def test_a_folder_of_parts_that_cannot_be_renamed_fails_before_the_model_loads(
    loads: list[str | None], use_fake_encoder: FakeEncoder, inputs: dict[str, str], tmp_path: Path
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes in a read-only folder")
    (tmp_path / "pairs").mkdir(mode=0o555)
    code, _, err = run("mine", inputs["questions"], "-o", f"{tmp_path}/pairs/", "--no-cache")
    assert code == 2 and err.startswith(f"dupfind: error: {tmp_path}/pairs/: cannot write"), err
    assert loads == [] and use_fake_encoder.calls == []


def test_an_index_in_a_read_only_folder_is_not_grown_after_the_encoding(
    loads: list[str | None], use_fake_encoder: FakeEncoder, inputs: dict[str, str], tmp_path: Path
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes in a read-only folder")
    folder = tmp_path / "indexes"
    folder.mkdir()
    assert run("index", "build", inputs["questions"], "-o", str(folder / "corpus.dfi"))[0] == 0
    folder.chmod(0o555)
    loads.clear()
    use_fake_encoder.calls.clear()
    code, _, err = run("index", "add", str(folder / "corpus.dfi"), inputs["clustered"], "--no-cache")
    folder.chmod(0o755)
    assert code == 2 and err.startswith(f"dupfind: error: {folder / 'corpus.dfi'}: cannot write"), err
    assert loads == [] and use_fake_encoder.calls == []


INPUTS = {
    "mine FILE --against CORPUS": ["mine", "{bad}", "--against", "{questions}"],
    "mine FILE --against INDEX": ["mine", "{bad}", "--against", "{index}"],
    "search CORPUS --queries": ["search", "{questions}", "--queries", "{bad}"],
    "search INDEX --queries": ["search", "{index}", "--queries", "{bad}"],
}


@pytest.fixture
def index(loads: list[str | None], use_fake_encoder: FakeEncoder, inputs: dict[str, str], tmp_path: Path) -> str:
    path = tmp_path / "corpus.dfi"
    assert run("index", "build", inputs["questions"], "-o", str(path), "--no-cache")[0] == 0
    loads.clear()
    use_fake_encoder.calls.clear()
    return str(path)


@pytest.mark.parametrize(("content", "message"), [(None, "no such file"), ("n\n1\n2\n", "no text column")])
@pytest.mark.parametrize("command", INPUTS)
def test_a_second_input_is_read_before_the_model_loads(
    loads: list[str | None],
    use_fake_encoder: FakeEncoder,
    inputs: dict[str, str],
    index: str,
    tmp_path: Path,
    command: str,
    content: str | None,
    message: str,
) -> None:
    bad = tmp_path / "bad.csv"
    if content is not None:
        bad.write_text(content, encoding="utf-8")
    code, _, err = run(*[arg.format(bad=bad, index=index, **inputs) for arg in INPUTS[command]], "--no-cache")
    assert code == 2 and err.splitlines()[-1].startswith(f"dupfind: error: {bad}: {message}"), err
    assert loads == [] and use_fake_encoder.calls == []


def test_calibrate_reads_the_project_thresholds_file_before_encoding(
    loads: list[str | None], use_fake_encoder: FakeEncoder, inputs: dict[str, str], tmp_path: Path
) -> None:
    project = tmp_path / "dupfind.toml"
    project.write_text("[models\n", encoding="utf-8")
    code, _, err = run("calibrate", "--pairs", inputs["pairs"], "--thresholds", str(project), "--no-cache")
    assert code == 2 and err.startswith(f"dupfind: error: {project}: not a valid dupfind thresholds file"), err
    assert loads == [] and use_fake_encoder.calls == []
    assert project.read_text(encoding="utf-8") == "[models\n"


def test_calibrate_reads_the_models_thresholds_before_encoding(
    loads: list[str | None], use_fake_encoder: FakeEncoder, inputs: dict[str, str], tmp_path: Path
) -> None:
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text("{}", encoding="utf-8")
    (model / "dupfind.json").write_text("{not json", encoding="utf-8")
    code, _, err = run("calibrate", "--pairs", inputs["pairs"], "--model", str(model), "--no-cache")
    assert code == 2 and err.startswith(f"dupfind: error: {model / 'dupfind.json'}: not a valid thresholds file"), err
    assert loads == [] and use_fake_encoder.calls == []


RERANKED = {
    "eval pairs": ["eval", "pairs", "{pairs}"],
    "eval mining": ["eval", "mining", "{clustered}"],
    "mine --against CORPUS": ["mine", "{questions}", "--against", "{clustered}"],
    "search CORPUS --queries": ["search", "{clustered}", "--queries", "{questions}"],
}


@pytest.mark.parametrize("command", RERANKED)
def test_a_reranker_that_cannot_load_fails_before_encoding(
    use_fake_reranker: Path,
    fake_encoder: FakeEncoder,
    monkeypatch: pytest.MonkeyPatch,
    inputs: dict[str, str],
    command: str,
) -> None:
    def broken(model: str | None) -> FakePairScorer:
        raise DupfindError(f"{model}: the re-ranker's weights are missing")

    register_backend("fake", lambda model: fake_encoder, pair_scorer=broken)
    args = [arg.format(**inputs) for arg in RERANKED[command]]
    code, _, err = run(*args, "--reranker", str(use_fake_reranker), "--no-cache")
    assert code == 2 and err.endswith("the re-ranker's weights are missing\n"), err
    assert fake_encoder.calls == []


def test_index_build_reads_the_models_thresholds_before_encoding(
    loads: list[str | None], use_fake_encoder: FakeEncoder, inputs: dict[str, str], tmp_path: Path
) -> None:
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text("{}", encoding="utf-8")
    (model / "dupfind.json").write_text("{not json", encoding="utf-8")
    out = tmp_path / "corpus.dfi"
    code, _, err = run("index", "build", inputs["questions"], "--model", str(model), "-o", str(out), "--no-cache")
    assert code == 2 and err.startswith(f"dupfind: error: {model / 'dupfind.json'}: not a valid thresholds file"), err
    assert loads == [] and use_fake_encoder.calls == [] and not out.exists()


def test_train_reranker_reads_the_project_thresholds_before_the_model_loads(
    loads: list[str | None], inputs: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained: list[object] = []
    monkeypatch.setattr("dupfind.quality.training.reranker.train_reranker", lambda *a, **k: trained.append(a))
    project = tmp_path / "dupfind.toml"
    project.write_text("[models\n", encoding="utf-8")
    args = [
        "train-reranker",
        "--pairs",
        inputs["pairs"],
        "-o",
        str(tmp_path / "reranker"),
        "--thresholds",
        str(project),
    ]
    code, _, err = run(*args)
    assert code == 2 and err.splitlines()[-1].startswith(f"dupfind: error: {project}: not a valid"), err
    assert loads == [] and trained == []
