"""Every command documents itself: a one-line summary and an example in `--help`."""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from dupfind import __version__
from dupfind.cli import app
from tests.cli.runner import runner


def command_paths() -> list[list[str]]:
    """Every leaf command, as the words that invoke it (`["index", "build"]`, ...)."""
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    paths: list[list[str]] = []

    def walk(group: TyperGroup, prefix: list[str]) -> None:
        for name, sub in group.commands.items():
            if isinstance(sub, TyperGroup):
                walk(sub, [*prefix, name])
            else:
                paths.append([*prefix, name])

    walk(root, [])
    return paths


def test_there_are_commands() -> None:
    assert {"mine", "compare"} <= {path[0] for path in command_paths()}


def test_every_command_has_a_summary_and_an_example() -> None:
    for path in command_paths():
        result = runner.invoke(app, [*path, "--help"], terminal_width=200)
        assert result.exit_code == 0, path
        text = result.stdout
        assert "Example:" in text and "dupfind " in text.split("Example:", 1)[1], path
        summary = text.split("\n\n")[1].strip()
        assert summary and len(summary.splitlines()) == 1, (path, summary)


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"dupfind {__version__}"


def _options(path: list[str]) -> dict[str, bool]:
    """A command's option spellings, each with whether it is hidden."""
    command = typer.main.get_command(app)
    for word in path:
        command = command.commands[word]  # type: ignore[attr-defined]
    return {spelling: bool(getattr(param, "hidden", False)) for param in command.params for spelling in param.opts}


def test_one_spelling_per_idea_on_every_command() -> None:
    """--quiet everywhere; reports as --format json (the old --json only hidden); --reranker wherever --rerank."""
    for path in command_paths():
        options = _options(path)
        assert "--quiet" in options, path
        assert options.get("--json", True), f"{path}: a visible --json (use --format json)"
        assert ("--rerank" in options) == ("--reranker" in options), path
