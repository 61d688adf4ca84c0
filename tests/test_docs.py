"""docs/cli.md is generated from the commands' own help, and documents every command and option."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
import typer
from typer.core import TyperGroup

from dupfind.cli import app

ROOT = Path(__file__).resolve().parents[1]
CLI_MD = ROOT / "docs" / "cli.md"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "docs" / "cli_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sections() -> dict[str, str]:
    """docs/cli.md's text under each `## \\`dupfind ...\\`` heading, by command path."""
    parts = re.split(r"^## `([^`]+)`$", CLI_MD.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def every_command() -> list[tuple[str, typer.core.TyperCommand | TyperGroup]]:
    found = []

    def walk(command: typer.core.TyperCommand | TyperGroup, path: str) -> None:
        found.append((path, command))
        for name, sub in getattr(command, "commands", {}).items():
            if not sub.hidden:
                walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "dupfind")
    return found


def test_cli_md_is_the_generators_output() -> None:
    module = generator()
    assert CLI_MD.read_text(encoding="utf-8") == module.reference(), (
        f"docs/cli.md is out of date with the commands' help: regenerate it with `{module.REGENERATE}`"
    )


def test_cli_md_documents_every_command_and_option() -> None:
    documented = sections()
    for path, command in every_command():
        assert path in documented, f"{path} is missing from docs/cli.md"
        text = documented[path]
        for param in command.params:
            is_argument = param.param_type_name == "argument"
            names = [param.metavar or param.name] if is_argument else [*param.opts, *param.secondary_opts]
            rows = [row.split(" | ")[0] for row in text.splitlines() if row.startswith("| `")]
            if getattr(param, "hidden", False):
                assert not any(_names_in(names, row) for row in rows), f"{path}: hidden {names} documented"
            else:
                for name in names:
                    assert any(_names_in([name], row) for row in rows), f"{path}: {name} is not in docs/cli.md"


def _names_in(names: list[str], text: str) -> bool:
    return any(re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) for name in names)


def test_cli_md_does_not_depend_on_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    module = generator()
    first = module.reference()
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert module.reference() == first


def test_the_readme_stays_short() -> None:
    """The README is for users: recipes, not figures (docs/benchmarks.md) or notes."""
    assert len((ROOT / "README.md").read_bytes()) <= 15_000
