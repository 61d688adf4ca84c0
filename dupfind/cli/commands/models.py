"""`dupfind models`: the built-in models, what they are, their size, thresholds and dev figures, and what
`--precision auto` chooses on this machine."""

from __future__ import annotations

import json

from dupfind.cli.app import command
from dupfind.cli.options import JsonOption, QuietOption, ReportFormatOption, report_format


@command("models")
def models(
    output_format: ReportFormatOption = "table", quiet: QuietOption = False, as_json: JsonOption = False
) -> None:
    """List the built-in models: bi-encoders for --model, re-rankers for --reranker.

    The defaults are marked; the last line says what the default --backend/--precision/--device auto choose here.

    Example: dupfind models
    """
    from dupfind.quality.catalog import builtin_models
    from dupfind.vectors.backends import resolve_choice

    fmt = report_format(output_format, as_json)
    found = builtin_models()
    if fmt == "json":
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
    print(f"on this machine: {resolve_choice().describe()}")
