"""Where results may be written: an output is checked (not an input, writable, a folder of parts) before any work."""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from dupfind.errors import DupfindError
from dupfind.io.atomic import descriptor, recover_folder

_PART = re.compile(r"part-\d{5,}\.parquet")


def is_folder_output(path: str | None) -> bool:
    """Whether `-o` names a folder (one that exists, or a path ending in `/`): results go there as Parquet parts."""
    return path is not None and path != "-" and (path.endswith(("/", os.sep)) or Path(path).is_dir())


def check_destination(
    path: str | None, inputs: Sequence[str] = (), parts: bool = False, appended: bool = False
) -> None:
    """Fail early, before any work, when a result could not be written at `path` (None or `-`: stdout): a folder,
    a folder that does not exist or that cannot be written, or one of the `inputs` (it would be replaced before it
    is read). With `parts`, a folder is a destination for Parquet parts, if it is new, empty or holds parts alone
    (a folder that a killed run left aside is put back first). An `appended` file (a labels file) is written in
    place, so an existing one must itself be writable. An open descriptor (/dev/stdout) must be open for writing.
    """
    if path is None or path == "-":
        return
    fd = descriptor(path)
    if fd is not None:
        _check_descriptor(path, fd)
        return
    target = Path(path)
    if is_folder_output(path) and parts:
        recover_folder(path)
        _check_folder(path, target.parent)
        if target.exists() and not target.is_dir():
            raise DupfindError(f"{path}: is a file, not a folder")
        check_parts_folder(path)
        if target.exists() and not os.access(target, os.W_OK | os.X_OK):
            raise DupfindError(f"{path}: cannot write in this folder (permission denied)")
        for source in inputs:
            if source != "-" and Path(source).resolve().is_relative_to(target.resolve()):
                raise DupfindError(f"{path}: holds the input {source}; write the result to another folder")
        return
    if target.is_dir() or path.endswith(("/", os.sep)):
        raise DupfindError(f"{path}: is a directory")
    real = Path(os.path.realpath(path))
    in_place = real.exists() and (appended or not real.is_file())  # a FIFO, a device, a file added to
    if not in_place:
        _check_folder(path, real.parent if target.is_symlink() else target.parent)
    elif not os.access(real, os.W_OK):
        raise DupfindError(f"{path}: cannot write (permission denied)")
    for source in inputs:
        if source != "-" and _same_file(source, path):
            raise DupfindError(f"{path}: is also an input; write the result to another file")


def check_parts_folder(path: str) -> None:
    """Refuse a folder of parts that holds anything but part files dupfind wrote (a file of another name, or a
    folder or a link named like a part): replacing the folder would delete it."""
    folder = Path(path)
    if not folder.is_dir():
        return
    for item in sorted(folder.iterdir()):
        if not _PART.fullmatch(item.name):
            raise DupfindError(f"{path}: holds {item.name}, not only Parquet parts; name a new or empty folder")
        if item.is_symlink() or not item.is_file():
            raise DupfindError(
                f"{path}: holds {item.name}, not a Parquet part dupfind wrote; name a new or empty folder"
            )


def _check_folder(path: str, folder: Path) -> None:
    """The folder a result is written into exists and takes a new file (one is made there and removed)."""
    if not folder.exists():
        raise DupfindError(f"{path}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise DupfindError(f"{path}: cannot write there: {folder} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".dupfind-", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise DupfindError(f"{path}: cannot write in the folder {folder} ({exc.strerror or exc})") from exc
    os.close(fd)
    os.unlink(probe)


def _check_descriptor(path: str, fd: int) -> None:
    try:
        mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    except OSError as exc:
        raise DupfindError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    if mode == os.O_RDONLY:
        raise DupfindError(f"{path}: cannot write (open for reading only)")


def _same_file(first: str, second: str) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return Path(first).resolve() == Path(second).resolve()
