"""Where results may be written: an output is checked (not an input, writable, a folder of parts) before any work."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from dupfind.errors import DupfindError

_PART = re.compile(r"part-\d{5,}\.parquet")


def is_folder_output(path: str | None) -> bool:
    """Whether `-o` names a folder (one that exists, or a path ending in `/`): results go there as Parquet parts."""
    return path is not None and path != "-" and (path.endswith(("/", os.sep)) or Path(path).is_dir())


def check_destination(path: str | None, inputs: Sequence[str] = (), parts: bool = False) -> None:
    """Fail early, before any work, when a result could not be written at `path` (None or `-`: stdout):
    a folder, a folder that does not exist, or one of the `inputs` (it would be replaced before it is read).
    With `parts`, a folder is a destination for Parquet parts, if it is new, empty or holds parts alone."""
    if path is None or path == "-":
        return
    target = Path(path)
    if is_folder_output(path) and parts:
        if not target.parent.exists():
            raise DupfindError(f"{path}: the folder {target.parent} does not exist")
        if target.exists() and not target.is_dir():
            raise DupfindError(f"{path}: is a file, not a folder")
        others = [] if not target.exists() else [item for item in target.iterdir() if not _PART.fullmatch(item.name)]
        if others:
            raise DupfindError(f"{path}: holds {others[0].name}, not only Parquet parts; name a new or empty folder")
        for source in inputs:
            if source != "-" and Path(source).resolve().is_relative_to(target.resolve()):
                raise DupfindError(f"{path}: holds the input {source}; write the result to another folder")
        return
    if target.is_dir() or path.endswith(("/", os.sep)):
        raise DupfindError(f"{path}: is a directory")
    if not target.parent.exists():
        raise DupfindError(f"{path}: the folder {target.parent} does not exist")
    for source in inputs:
        if source != "-" and _same_file(source, path):
            raise DupfindError(f"{path}: is also an input; write the result to another file")


def _same_file(first: str, second: str) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return Path(first).resolve() == Path(second).resolve()
