"""The one way the command-line tests run a command: in this process, with its exit code, stdout and stderr."""

from __future__ import annotations

from typer.testing import CliRunner

from dupfind.cli import app

runner = CliRunner()


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    """Run `dupfind ARGS` (with `input` on stdin): the exit code, stdout and stderr."""
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr
