"""Write the command reference, docs/cli.md, from the command line's own help.

    python docs/cli_reference.py > docs/cli.md

Every command and subcommand of `dupfind.cli.app`, with its usage, its help text and a table of its
arguments and options (hidden ones left out). The options are formatted from click's parameters, not
from rendered `--help`, so the output does not depend on the terminal's width, colours or locale.
tests/test_docs.py checks that docs/cli.md is this script's output.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # document the tree this script lives in, not an installed copy

REGENERATE = "python docs/cli_reference.py > docs/cli.md"


def command_contexts() -> list[Any]:
    """A click context for every command, the top level first, then each command (and its subcommands)
    in alphabetical order. `context.command_path` is the words that invoke it (`dupfind eval pairs`)."""
    import typer

    from dupfind.cli import app

    root = typer.main.get_command(app)
    contexts: list[Any] = []

    def walk(command: Any, name: str, parent: Any) -> None:
        context = command.context_class(command, info_name=name, parent=parent, **command.context_settings)
        contexts.append(context)
        for sub_name in sorted(getattr(command, "commands", {})):
            sub = command.commands[sub_name]
            if not sub.hidden:
                walk(sub, sub_name, context)

    walk(root, "dupfind", None)
    return contexts


def _help_paragraphs(command: Any) -> list[str]:
    """The command's help text as click shows it (up to a form feed), one string per paragraph."""
    text = inspect.cleandoc(command.help or "").partition("\f")[0]
    paragraphs = []
    for block in text.split("\n\n"):
        lines = [line.strip() for line in block.splitlines() if line.strip() not in ("", "\b")]
        if lines:
            paragraphs.append(" ".join(lines))
    return paragraphs


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _anchor(path: str) -> str:
    return path.replace(" ", "-")


def _section(context: Any) -> list[str]:
    command = context.command
    path = context.command_path
    lines = [f"## `{path}`", "", "```text", " ".join([path, *command.collect_usage_pieces(context)]), "```", ""]
    for paragraph in _help_paragraphs(command):
        if paragraph.startswith("Example: "):
            paragraph = f"Example: `{paragraph.removeprefix('Example: ')}`"
        lines += [paragraph, ""]
    subcommands = getattr(command, "commands", {})
    if subcommands:
        lines += ["| command | what it does |", "|---|---|"]
        for name in sorted(subcommands):
            sub = subcommands[name]
            if not sub.hidden:
                summary = _help_paragraphs(sub)[:1] or [""]
                lines.append(f"| [`{name}`](#{_anchor(f'{path} {name}')}) | {_cell(summary[0])} |")
        lines.append("")
    params = [(param, param.get_help_record(context)) for param in command.get_params(context)]
    for kind, title in (("argument", "argument"), ("option", "option")):
        rows = [(param, record) for param, record in params if record and param.param_type_name == kind]
        if rows:
            lines += [f"| {title} | description |", "|---|---|"]
            for _param, (names, help_text) in rows:
                lines.append(f"| `{_cell(names)}` | {_cell(help_text)} |")
            lines.append("")
    return lines


def reference() -> str:
    """docs/cli.md: the whole reference, as Markdown."""
    contexts = command_contexts()
    lines = [
        "# Command reference",
        "",
        f"Generated from the commands' own help by `{REGENERATE}`: do not edit it by hand.",
        "`dupfind COMMAND --help` shows the same on a terminal.",
        "",
    ]
    lines += [f"- [`{c.command_path}`](#{_anchor(c.command_path)})" for c in contexts]
    lines.append("")
    for context in contexts:
        lines += _section(context)
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(reference())
