"""Writing files all or nothing: a crash, an interrupt or a full disk leaves the old file or the complete new one.

`replacing(path)` is the one mechanism: a temporary file beside the target, fsynced, given the mode of the file
it replaces (a new one the umask's), renamed over it, the folder fsynced. A symlink is written through (its
target is replaced). `dupfind.io.write.atomic_output` builds user outputs on it; caches and memo files use it directly.
`replacing_folder(path)` does the same for a folder of files (`dupfind.io.write.write_parquet_parts`).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from dupfind.errors import DupfindError

STALE_TEMP_SECONDS = 3600.0  # a build temporary this old was left by a killed process


@contextmanager
def replacing(path: str | Path) -> Iterator[BinaryIO]:
    """A binary handle whose content replaces `path` when the block completes, and is dropped if it fails.

    Raises `OSError` as the file system does (a missing folder, no space left).
    """
    target = Path(os.path.realpath(path))
    try:
        existing: os.stat_result | None = target.stat()
    except FileNotFoundError:
        existing = None
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        if existing is None:
            os.fchmod(fd, 0o666 & ~_umask())
        else:
            os.fchmod(fd, stat.S_IMODE(existing.st_mode))
            if os.geteuid() == 0:
                with suppress(OSError):
                    os.fchown(fd, existing.st_uid, existing.st_gid)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_folder(target.parent)


@contextmanager
def replacing_folder(path: str | Path) -> Iterator[Path]:
    """A new folder whose files replace the folder `path` when the block completes, and is dropped if it fails.

    The files are written into a temporary folder beside `path` (each fsynced by whoever writes it), which is
    given the mode of the folder it replaces (a new one the umask's) and renamed into place; the old folder is
    renamed aside first and deleted after. So `path` holds the old files or all the new ones, never a mix.
    """
    target = Path(os.path.realpath(path))
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        existing = target.stat() if target.exists() else None
        os.chmod(staging, 0o777 & ~_umask() if existing is None else stat.S_IMODE(existing.st_mode))
        yield staging
        fsync_folder(staging)
        if existing is None:
            os.rename(staging, target)
        else:
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.rename(target, old / target.name)
            os.rename(staging, target)
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_folder(target.parent)


def write_bytes_durably(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, all or nothing."""
    with replacing(path) as handle:
        handle.write(data)


def fsync_file(path: Path) -> None:
    """Flush a file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (renames, new files) to disk, where the platform allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a folder
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def build_atomically(target: Path, build: Callable[[Path], None]) -> None:
    """Build a folder (an exported model, say) in a temporary sibling, then rename it to `target`; a concurrent
    winner is kept."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(target.parent)
        temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise DupfindError(f"cannot write to the cache folder {target.parent}: {exc.strerror}") from exc
    try:
        build(temporary)
        _fsync_tree(temporary)
        try:
            temporary.rename(target)
            fsync_folder(target.parent)
        except OSError:
            if not target.is_dir():
                raise
    except OSError as exc:
        raise DupfindError(f"cannot build {target}: {exc}") from exc
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    """Flush every file of a freshly built folder to disk before it is renamed into place."""
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file():
            fsync_file(path)
        elif path.is_dir():
            fsync_folder(path)
    fsync_folder(folder)


def _remove_stale_temporaries(folder: Path) -> None:
    """Remove what killed builds left behind (temporaries older than an hour)."""
    for temporary in folder.glob(".*.tmp"):
        try:
            if time.time() - temporary.stat().st_mtime > STALE_TEMP_SECONDS:
                shutil.rmtree(temporary, ignore_errors=True)
        except OSError:
            continue
