"""`dupfind models`: the built-in models, what they are, their size, thresholds and dev figures."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from dupfind.cli.app import command


@command("models")
def models(as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False) -> None:
    """List the built-in models: bi-encoders for --model, re-rankers for --reranker.

    The defaults are marked.

    Example: dupfind models
    """
    from dupfind.quality.catalog import builtin_models

    found = builtin_models()
    if as_json:
        print(json.dumps([entry.to_json() for entry in found]))
        return
    for entry in found:
        default = " (default)" if entry.default else ""
        size = f"{entry.size / 1e6:.0f} MB" if entry.size is not None else "not installed"
        print(f"{entry.name}{default}: {entry.kind}, {size}")
        print(f"  {entry.description}")
        if entry.thresholds is not None:
            print(f"  thresholds: pair {entry.thresholds.pair:.3f}, mining {entry.thresholds.mining:.3f}")
        if entry.dev:
            print("  dev: " + ", ".join(f"{key} {value}" for key, value in entry.dev.items()))
