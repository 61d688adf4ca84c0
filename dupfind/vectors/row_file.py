"""Unit vectors in row order in one `.npy` file, read a few rows at a time without keeping the file resident.

`--engine ray` mines from such a file in the work folder (`dupfind.ray.mine`): the driver writes it from the
work folder's embedding store a block at a time, and every task maps it and copies only the rows it needs. Pages
read through a mapping count in a process's resident memory until they are dropped, and the kernel maps up to
64 kB around each page read (fault-around, whatever `madvise` says): copying 80k random rows of a 1.5 GB file
(1M rows of 384 dimensions) left 1.6 GB resident. So a read copies `GATHER_ROWS` rows at a time and drops the
mapped pages after each: at most ≈ 64 MB of the file is resident at once.

A run's file lives in a folder that other runs share (`claimed_row_file`): it is locked for as long as the run
lives, so that the next run deletes the files of runs killed outright, and only theirs.
"""

from __future__ import annotations

import fcntl
import itertools
import mmap
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dupfind.vectors.encoding import Embeddings

GATHER_ROWS = 1024  # rows copied between two drops of the mapped pages: ≤ 64 MB resident with fault-around
LOCK = ".lock"  # the suffix of a row file's lock, beside it


class RowFile:
    """The `.npy` file of float32 rows at `path`, mapped at the first read of each process (a pickled `RowFile`
    carries only its path). `rows[indices]` copies the rows asked, keeping none of the file's pages resident."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mapped: np.memmap[Any, np.dtype[np.float32]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    def _rows(self) -> np.memmap[Any, np.dtype[np.float32]]:
        if self._mapped is None:
            self._mapped = np.load(self.path, mmap_mode="r", allow_pickle=False)
        return self._mapped

    def __len__(self) -> int:
        return int(self._rows().shape[0])

    def __getitem__(self, rows: NDArray[np.int64] | slice) -> Embeddings:
        """A copy of the rows asked (an index array or a slice), in that order."""
        mapped = self._rows()
        return copy_rows(mapped, np.arange(*rows.indices(len(mapped))) if isinstance(rows, slice) else rows)


def write_row_file(path: Path, rows: int, blocks: Iterable[Embeddings]) -> RowFile:
    """Write the float32 row `blocks` (arrays of one width, in order, `rows` rows in all, at least one) as one
    `.npy` file at `path`, through a temporary name in its folder, and return it."""
    blocks = iter(blocks)
    first = next(blocks)
    written = 0
    tmp = _temporary(path)
    try:
        with tmp.open("wb") as file:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False}
            np.lib.format.write_array_header_1_0(file, header | {"shape": (rows, first.shape[1])})
            for block in itertools.chain([first], blocks):
                file.write(np.ascontiguousarray(block, dtype=np.float32).data)
                written += len(block)
        if written != rows:
            raise ValueError(f"{written} rows written to {path}, {rows} announced")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return RowFile(path)


def copy_rows(rows: NDArray[np.float32], wanted: NDArray[np.int64]) -> Embeddings:
    """A copy of the `wanted` rows of (memory-mapped) `rows`, `GATHER_ROWS` at a time, the mapped pages dropped after
    each (`drop_pages`)."""
    out = np.empty((len(wanted), rows.shape[1]), dtype=np.float32)
    for start in range(0, len(wanted), GATHER_ROWS):
        out[start : start + GATHER_ROWS] = rows[wanted[start : start + GATHER_ROWS]]
        drop_pages(rows)
    return out


def mapping_of(rows: NDArray[np.float32]) -> mmap.mmap | None:
    """The memory mapping under rows loaded with `np.load(mmap_mode="r")`, or None for rows in memory."""
    mapping = getattr(rows, "_mmap", None) if isinstance(rows, np.memmap) else None
    return mapping if isinstance(mapping, mmap.mmap) else None


def drop_pages(rows: NDArray[np.float32]) -> None:
    """Drop the pages of memory-mapped rows read so far: pages touched through a mapping count in the process's
    resident memory until it is unmapped (they stay in the page cache, to be read again cheaply)."""
    mapping = mapping_of(rows)
    if mapping is not None:
        with suppress(OSError, ValueError):  # only memory is at stake
            mapping.madvise(mmap.MADV_DONTNEED)


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


@contextmanager
def claimed_row_file(folder: Path) -> Iterator[Path]:
    """A new row file's path in `folder` (made if missing), owned by this process for the block and deleted after.
    The files of owners that died (a run killed outright) are deleted first. Ownership is an exclusive `flock` on
    the lock file beside the row file, which the kernel releases when its process dies (on a local file system,
    and on NFS v4, whose servers keep such locks); a file with no lock beside it has no owner."""
    folder.mkdir(parents=True, exist_ok=True)
    _delete_unowned(folder)
    while True:
        lock = folder / f"{uuid.uuid4().hex}{LOCK}"
        held = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            if os.path.samestat(os.fstat(held), os.stat(lock)):
                break  # not deleted by another run between its making and its locking
        except FileNotFoundError:
            pass
        os.close(held)
    path = lock.with_suffix(".npy")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        lock.unlink(missing_ok=True)
        os.close(held)


def _delete_unowned(folder: Path) -> None:
    """Delete the row files in `folder` (and their temporary files and locks) that no live process owns."""
    for lock in folder.glob(f"*{LOCK}"):
        try:
            held = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # its run is alive
        else:
            for path in (lock.with_suffix(".npy"), _temporary(lock.with_suffix(".npy"))):
                path.unlink(missing_ok=True)
            lock.unlink(missing_ok=True)
        finally:
            os.close(held)
    for path in [*folder.glob("*.npy"), *folder.glob(".*.npy.tmp")]:
        if not (folder / f"{path.name.strip('.').split('.')[0]}{LOCK}").exists():
            path.unlink(missing_ok=True)
