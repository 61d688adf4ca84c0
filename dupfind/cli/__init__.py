"""The `dupfind` command line: a thin layer over the library, one module per command."""

from __future__ import annotations

import sys

from dupfind.cli.app import app, guard_standard_streams
from dupfind.cli.commands import (  # noqa: F401  (importing a command module registers its commands)
    cache,
    calibrate,
    clusters,
    compare,
    dedupe,
    evaluate,
    index,
    label,
    mine,
    models,
    search,
    train,
)
from dupfind.offline import stay_offline


def main() -> None:
    """Entry point of the `dupfind` console script."""
    stay_offline()
    guard_standard_streams()
    try:
        app()
    except BrokenPipeError:
        sys.exit(0)


__all__ = ["app", "main"]
