"""`dupfind compare`: score, verdict, exit codes like grep's."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from dupfind.cli import app
from tests.conftest import FakeEncoder

runner = CliRunner()


def test_duplicate_exits_0(use_fake_encoder: FakeEncoder) -> None:
    result = runner.invoke(app, ["compare", "red apple pie", "Red apple pie!"])
    assert result.exit_code == 0
    assert "duplicate" in result.stdout and "not" not in result.stdout


def test_not_duplicate_exits_1_with_json(use_fake_encoder: FakeEncoder) -> None:
    result = runner.invoke(app, ["compare", "red apple pie", "why is the sky blue", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["duplicate"] is False and data["score"] < data["threshold"]


def test_threshold_option_decides(use_fake_encoder: FakeEncoder) -> None:
    assert runner.invoke(app, ["compare", "red apple pie", "red apple tart", "-t", "0.3"]).exit_code == 0
    assert runner.invoke(app, ["compare", "red apple pie", "red apple tart", "-t", "0.99"]).exit_code == 1


def test_errors_exit_2(use_fake_encoder: FakeEncoder) -> None:
    result = runner.invoke(app, ["compare", "a", "b", "-t", "2"])
    assert result.exit_code == 2 and "between -1 and 1" in result.stderr
    result = runner.invoke(app, ["compare", " ", "b"])
    assert result.exit_code == 2 and "non-blank" in result.stderr
