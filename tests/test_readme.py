"""Every `dupfind` command shown in the README runs (with the fake encoder), so the docs cannot drift."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dupfind.cli import app
from tests.conftest import FakeEncoder

ROOT = Path(__file__).resolve().parents[1]
# Training needs a real model; tests/test_training.py and tests/test_training_reranker.py cover it.
NOT_RUN_HERE = ("train", "train-reranker")
# Ray's workers know the fake encoder only on the Ray of tests/ray/test_ray_engine.py, which runs these commands.
ON_RAY = "--engine"
VERDICTS = ("compare", "search")  # exit 1 means "not a duplicate" for these, and only these


def readme_commands() -> list[list[str]]:
    """The dupfind invocations of the README's bash blocks, cut at the first pipe or redirection."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.DOTALL)
    commands = []
    for line in "\n".join(blocks).splitlines():
        line = line.split("#", 1)[0].strip()
        if "dupfind " not in line:
            continue
        words = shlex.split(line[line.index("dupfind ") :])
        for stop in ("|", ">", "&&", ";"):
            if stop in words:
                words = words[: words.index(stop)]
        commands.append(words[1:])
    return commands


def test_the_readme_shows_commands() -> None:
    shown = {words[0] for words in readme_commands()}
    assert {"mine", "compare", "clusters", "dedupe", "index", "search", "eval", "calibrate"} <= shown


def test_every_readme_command_runs(
    use_fake_encoder: FakeEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DUPFIND_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()
    for words in readme_commands():
        if words[0] in NOT_RUN_HERE or ON_RAY in words:
            continue
        stdin = (tmp_path / "examples" / "questions.txt").read_text(encoding="utf-8") if "-" in words else None
        result = runner.invoke(app, words, input=stdin)
        verdict = words[0] in VERDICTS and result.exit_code == 1 and isinstance(result.exception, SystemExit)
        assert result.exit_code == 0 or verdict, (words, result.stderr, result.exception)
        assert "Traceback" not in result.stderr


def test_the_library_example_runs(
    use_fake_encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.DOTALL)
    assert blocks
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DUPFIND_CACHE_DIR", str(tmp_path / "cache"))
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert use_fake_encoder.calls
