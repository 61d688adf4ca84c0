"""Writing files all or nothing: a crash, an interrupt or a full disk leaves the old file or the complete new one.

`replacing(path)` is the one mechanism: a temporary file beside the target, fsynced, given the mode of the file
it replaces (a new one the umask's), renamed over it, the folder fsynced. A symlink is written through (its
target is replaced). `writing(path)` builds user outputs on it (`dupfind.io.write.atomic_output`), but writes a
stream in place (/dev/stdout, a FIFO, a device); caches and memo files use `replacing` directly.
`replacing_folder(path)` does the same for a folder of files (`dupfind.io.write.write_parquet_parts`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from dupfind.errors import DupfindError

STALE_TEMP_SECONDS = 3600.0  # a build temporary this old was left by a killed process

_DESCRIPTOR_PATHS = re.compile(r"/(?:dev/fd|proc/self/fd|proc/thread-self/fd|proc/(\d+)/fd)/(\d+)")
_STANDARD_PATHS = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}


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
    renamed aside first (`.NAME.PID.*.old`) and deleted after. So `path` holds the old files or all the new ones,
    never a mix: an error or an interrupt between the two renames puts the old folder back (Ctrl-C and SIGTERM
    wait for the swap), and a folder a killed run left aside is put back by the next (`recover_folder`).
    """
    target = Path(os.path.realpath(path))
    recover_folder(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent))
    try:
        existing = target.stat() if target.exists() else None
        os.chmod(staging, 0o777 & ~_umask() if existing is None else stat.S_IMODE(existing.st_mode))
        yield staging
        fsync_folder(staging)
        if existing is None:
            os.rename(staging, target)
        else:
            _swap(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_folder(target.parent)


def _swap(staging: Path, target: Path) -> None:
    """Rename the folder `target` aside and `staging` in its place; the old one is back if that fails."""
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".old", dir=target.parent))
    old = aside / target.name
    with _signals_held():
        try:
            os.rename(target, old)
            os.rename(staging, target)
        except BaseException:
            if old.exists() and not target.exists():
                os.rename(old, target)
            with suppress(OSError):
                aside.rmdir()
            raise
    shutil.rmtree(aside, ignore_errors=True)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is done (they are delivered then)."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def recover_folder(path: str | Path) -> None:
    """Put back the folder `path` where a run killed between the two renames of `replacing_folder` left it aside
    (`path` is missing), drop the old folder a completed swap left (`path` is there) and the new folders killed
    runs did not finish; what a run still going set aside is left alone."""
    target = Path(os.path.realpath(path))
    pattern = re.compile(re.escape(f".{target.name}.") + r"(\d+)\.[a-z0-9_]+\.(old|tmp)")
    try:
        leftovers = [(entry, pattern.fullmatch(entry.name)) for entry in target.parent.iterdir()]
    except OSError:
        return
    for aside, found in leftovers:
        if found is None or _running(int(found.group(1))) or not aside.is_dir():
            continue
        old = aside / target.name
        if found.group(2) == "old" and old.is_dir() and not os.path.lexists(target):
            os.rename(old, target)
            fsync_folder(target.parent)
        if found.group(2) == "tmp" or old.is_dir():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            with suppress(OSError):
                aside.rmdir()


def _running(pid: int) -> bool:
    """Whether another process of this id is running (this one's leftovers are not in use)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, another user's
    return True


def descriptor(path: str) -> int | None:
    """The open file descriptor that `path` names (/dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N, or a link
    to one), else None: such a path is a stream to write in place, at its position, never a file to replace."""
    current = os.path.abspath(path)
    for _ in range(40):  # the links followed, at most (as the kernel does)
        if current in _STANDARD_PATHS:
            return _STANDARD_PATHS[current]
        found = _DESCRIPTOR_PATHS.fullmatch(current)
        if found and (found.group(1) is None or int(found.group(1)) == os.getpid()):
            return int(found.group(2))
        if not os.path.islink(current):
            return None
        current = os.path.normpath(os.path.join(os.path.dirname(current), os.readlink(current)))
    return None


@contextmanager
def writing(path: str | Path) -> Iterator[BinaryIO]:
    """A binary handle on the output `path`: a regular (or new) file is replaced all or nothing (`replacing`); an
    open descriptor (`descriptor`) is written in place at its position (so `-o /dev/stdout >> log` appends), and
    a FIFO, a device or a socket directly."""
    fd = descriptor(str(path))
    if fd is not None:
        for stream in (sys.stdout, sys.stderr):
            with suppress(OSError, ValueError):
                stream.flush()
        with os.fdopen(fd, "wb", closefd=False) as handle:
            yield handle
        return
    target = Path(os.path.realpath(path))
    if target.exists() and not stat.S_ISREG(target.stat().st_mode):
        with target.open("wb") as handle:
            yield handle
        return
    with replacing(target) as handle:
        yield handle


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
