"""Per-project thresholds: `calibrate --thresholds FILE` writes them; `./dupfind.toml` or `--thresholds` apply."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from dupfind.thresholds import load_thresholds
from dupfind.vectors.model import DEFAULT_MODEL, fingerprint, resolve_model
from tests.cli.runner import run
from tests.conftest import FakeEncoder

DEFAULT_THRESHOLDS = load_thresholds(resolve_model(None))  # the default model's calibrated thresholds


@pytest.fixture
def labels(tmp_path: Path) -> Path:
    path = tmp_path / "labels.csv"
    first = [f"how do i cook dish {i} at home" for i in range(30)]
    second = [f"how can i cook dish {i} at home" if i % 2 else f"why is sky {i} blue today" for i in range(30)]
    pd.DataFrame({"question1": first, "question2": second, "is_duplicate": [i % 2 for i in range(30)]}).to_csv(
        path, index=False
    )
    return path


def test_calibrate_writes_the_project_file_and_commands_use_it(
    use_fake_encoder: FakeEncoder, labels: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run("calibrate", "--pairs", str(labels), "--thresholds", "dupfind.toml", "-f", "json")
    assert code == 0, err
    report = json.loads(out)
    pair = report["pair_threshold"]
    assert report["stored"] == "dupfind.toml" and pair != DEFAULT_THRESHOLDS.pair
    assert report["mining_threshold"] == DEFAULT_THRESHOLDS.mining  # not calibrated here: kept
    assert "90% range" in err
    text = (tmp_path / "dupfind.toml").read_text(encoding="utf-8")
    assert f"pair = {pair}" in text and f'name = "{DEFAULT_MODEL}"' in text
    code, out, err = run(
        "-v",
        "compare",
        "--no-rerank",
        "how do i cook dish 3 at home",
        "how can i cook dish 3 at home",
        "--format",
        "json",
    )
    assert code == 0 and json.loads(out)["threshold"] == pair
    assert "thresholds from dupfind.toml" in err
    monkeypatch.chdir(tmp_path / "..")
    code, out, _ = run(
        "compare", "--no-rerank", "a b", "a c", "--format", "json", "--thresholds", str(tmp_path / "dupfind.toml")
    )
    assert json.loads(out)["threshold"] == pair
    code, out, _ = run("compare", "--no-rerank", "a b", "a c", "--format", "json")
    assert json.loads(out)["threshold"] == DEFAULT_THRESHOLDS.pair  # elsewhere, the model's own


def test_a_project_file_for_another_model_does_not_apply(
    use_fake_encoder: FakeEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dupfind.toml").write_text('[models."0123456789abcdef"]\npair = 0.5\nmining = 0.6\n', encoding="utf-8")
    code, out, err = run("-v", "compare", "--no-rerank", "a b", "a c", "--format", "json")
    assert code == 1 and json.loads(out)["threshold"] == DEFAULT_THRESHOLDS.pair  # 1: not a duplicate
    assert "has no thresholds for model" in err


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("[models.x\npair = 1", "(Expected ']'"),
        ("models = 3\n", ": models is 3, not a table"),
        ("[[models]]\npair = 0.5\n", ": models is an array, not a table"),
        ('[models]\n"{fp}" = 0.5\n', ': models."{fp}" is 0.5, not a table'),
        ('[models]\n"{fp}" = 2026-01-01\n', ': models."{fp}" is a date (2026-01-01), not a table'),
        ('[models."{fp}"]\npair = 0.7\n', ': models."{fp}" has no mining threshold'),
        ('[models."{fp}"]\npair = "high"\nmining = 0.8\n', ': models."{fp}".pair is a string ("high"), not a number'),
        ('[models."{fp}"]\npair = true\nmining = 0.8\n', ': models."{fp}".pair is a boolean (true), not a number'),
        ('[models."{fp}"]\npair = 2026-01-01\nmining = 0.8\n', ': models."{fp}".pair is a date (2026-01-01), not'),
        ('[models."{fp}"]\npair = 0.7\nmining = 07:32:00\n', ': models."{fp}".mining is a time (07:32:00), not'),
        (
            '[models."{fp}"]\npair = 1979-05-27T07:32:00Z\nmining = 0.8\n',
            ': models."{fp}".pair is a date-time (1979-05-27T07:32:00+00:00), not',
        ),
        ('[models."{fp}"]\npair = nan\nmining = 0.8\n', ': models."{fp}".pair is nan, not a number between -1 and 1'),
        ('[models."{fp}"]\npair = 0.7\nmining = -inf\n', ': models."{fp}".mining is -inf, not a number between'),
        ('[models."{fp}"]\npair = 1.5\nmining = 0.8\n', ': models."{fp}".pair is 1.5, not a number between -1 and 1'),
        ('[models."{fp}"]\npair = 0.7\nmining = -2\n', ': models."{fp}".mining is -2, not a number between -1 and 1'),
        ('[models."{fp}"]\npair = 0.7\nmining = {{ at = 0.8 }}\n', ': models."{fp}".mining is a table, not a number'),
    ],
)
def test_a_bad_project_file_is_one_line_naming_the_key(
    use_fake_encoder: FakeEncoder,
    labels: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: str,
    says: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    fp = fingerprint(resolve_model(None))
    (tmp_path / "dupfind.toml").write_text(content.format(fp=fp), encoding="utf-8")
    for command in (
        ["compare", "--no-rerank", "a b", "a c"],
        ["calibrate", "--pairs", str(labels), "--thresholds", "dupfind.toml"],
    ):
        code, out, err = run(*command)
        assert code == 2 and out == "", err
        assert err.startswith("dupfind: error: dupfind.toml: not a valid dupfind thresholds file"), err
        assert says.format(fp=fp) in err and len(err.strip().splitlines()) == 1
    assert use_fake_encoder.calls == []  # calibrate checked the file before it encoded anything
    assert (tmp_path / "dupfind.toml").read_text(encoding="utf-8") == content.format(fp=fp)  # and left it alone


def test_calibrate_keeps_the_comments_tables_and_dates_of_the_project_file(
    use_fake_encoder: FakeEncoder, labels: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    project = tmp_path / "dupfind.toml"
    original = (
        "# Our thresholds.\nreviewed = 2026-11-30  # by the desk team\n\n"
        '[models."0123456789abcdef"]  # a model we no longer use\n'
        'pair = 0.61\nmining = 0.72\nextra = { source = "dev", at = 1979-05-27T07:32:00Z }\n\n'
        '[notes]\n# free text\ntodo = ["recalibrate"]\n'
    )
    project.write_text(original, encoding="utf-8")
    project.chmod(0o600)
    code, out, err = run("calibrate", "--pairs", str(labels), "--thresholds", "dupfind.toml", "-f", "json")
    assert code == 0, err
    text, fp = project.read_text(encoding="utf-8"), fingerprint(resolve_model(None))
    ours = tomllib.loads(text)["models"][fp]
    assert ours == {
        "name": DEFAULT_MODEL,
        "pair": json.loads(out)["pair_threshold"],
        "mining": DEFAULT_THRESHOLDS.mining,
    }
    table = f'[models."{fp}"]\nname = "{DEFAULT_MODEL}"\npair = {ours["pair"]}\nmining = {ours["mining"]}\n\n'
    assert text == original.replace("[notes]", table + "[notes]")  # all else as it was, the new table after the others
    assert project.stat().st_mode & 0o777 == 0o600
    code, out, err = run("compare", "--no-rerank", "a b", "a c", "--format", "json")  # the dates elsewhere are harmless
    assert json.loads(out)["threshold"] == ours["pair"], err


def test_a_missing_thresholds_file_is_an_error(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    code, _, err = run("compare", "--no-rerank", "a b", "a c", "--thresholds", str(tmp_path / "nope.toml"))
    assert code == 2 and "no such thresholds file" in err


def test_calibrate_warns_on_too_few_labels(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    few = tmp_path / "few.csv"
    pd.DataFrame(
        {"question1": ["a b", "c d", "e f"], "question2": ["a b", "x y", "e g"], "is_duplicate": [1, 0, 1]}
    ).to_csv(few, index=False)
    code, _, err = run("calibrate", "--pairs", str(few), "--dry-run", "-f", "json")
    assert code == 0, err
    assert "dupfind: warning:" in err and "labels" in err
