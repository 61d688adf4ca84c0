"""`dupfind compare`: score, verdict, exit codes like grep's."""

from __future__ import annotations

import json

from dupfind.cli import app
from tests.cli.runner import runner
from tests.conftest import FakeEncoder


def test_duplicate_exits_0(use_fake_encoder: FakeEncoder) -> None:
    result = runner.invoke(app, ["compare", "--no-rerank", "red apple pie", "Red apple pie!"])
    assert result.exit_code == 0
    assert "duplicate" in result.stdout and "not" not in result.stdout


def test_not_duplicate_exits_1_with_json(use_fake_encoder: FakeEncoder) -> None:
    result = runner.invoke(app, ["compare", "--no-rerank", "red apple pie", "why is the sky blue", "--format", "json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["duplicate"] is False and data["score"] < data["threshold"]


def test_threshold_option_decides(use_fake_encoder: FakeEncoder) -> None:
    assert runner.invoke(app, ["compare", "--no-rerank", "red apple pie", "red apple tart", "-t", "0.3"]).exit_code == 0
    assert (
        runner.invoke(app, ["compare", "--no-rerank", "red apple pie", "red apple tart", "-t", "0.99"]).exit_code == 1
    )


def test_errors_exit_2(use_fake_encoder: FakeEncoder) -> None:
    result = runner.invoke(app, ["compare", "--no-rerank", "a", "b", "-t", "2"])
    assert result.exit_code == 2 and "between -1 and 1" in result.stderr
    result = runner.invoke(app, ["compare", "--no-rerank", " ", "b"])
    assert result.exit_code == 2 and "non-blank" in result.stderr


def test_the_old_json_flag_still_works_and_says_what_replaces_it(use_fake_encoder: FakeEncoder) -> None:
    for command in (["compare", "--no-rerank", "red apple pie", "red apple pie"], ["models"], ["cache", "info"]):
        new = runner.invoke(app, [*command, "--format", "json"])
        old = runner.invoke(app, [*command, "--json"])
        assert old.stdout == new.stdout and json.loads(old.stdout) is not None
        assert "--json is deprecated" in old.stderr and "--json" not in new.stderr
        quiet = runner.invoke(app, [*command, "--json", "--quiet"])
        assert quiet.stdout == new.stdout and quiet.stderr == ""


def test_an_unknown_report_format_is_an_error(use_fake_encoder: FakeEncoder) -> None:
    result = runner.invoke(app, ["compare", "--no-rerank", "a", "b", "--format", "csv"])
    assert result.exit_code == 2 and "unknown --format 'csv'" in result.stderr
