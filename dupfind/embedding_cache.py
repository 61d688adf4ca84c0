"""A disk cache of embeddings keyed by (encoder fingerprint, exact text), safe under concurrent and killed runs.

Each model has a folder `<root>/<fingerprint>/` of append-only shards. A shard is two `.npy` files written
once and never changed: `<name>.vectors.npy` (float32, one row per text) first, then `<name>.keys.npy`
(the 16-byte BLAKE2b digests of the UTF-8 texts, as uint64 pairs), each written under a temporary name and
renamed into place. A shard exists once its keys file does, so readers never see a partial shard, two runs
writing at once write different shards, and a killed run leaves at most a stray temporary file. Everything
is loaded with `allow_pickle=False`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from dupfind.cache_dir import cache_dir
from dupfind.encoding import Embeddings

Keys = NDArray[np.uint64]
KEYS_SUFFIX = ".keys.npy"
VECTORS_SUFFIX = ".vectors.npy"
MAX_SHARDS = 16
_COPY_ROWS = 1 << 16


def text_keys(texts: Sequence[str]) -> Keys:
    """The cache key of each text: its 16-byte BLAKE2b digest as two uint64, shape (n, 2)."""
    digests = b"".join(
        hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest() for text in texts
    )
    return np.frombuffer(digests, dtype="<u8").reshape(-1, 2).astype(np.uint64)


@dataclass(frozen=True)
class ModelUsage:
    """What the cache holds for one encoder fingerprint."""

    fingerprint: str
    rows: int
    shards: int
    size: int


class EmbeddingCache:
    """Embeddings on disk under `root` (default `cache_dir()/embeddings`), one folder per encoder fingerprint."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else cache_dir() / "embeddings"

    def folder(self, fingerprint: str) -> Path:
        return self.root / re.sub(r"[^A-Za-z0-9._-]", "_", fingerprint)

    def lookup(self, fingerprint: str, keys: Keys) -> tuple[Embeddings | None, NDArray[np.bool_]]:
        """The cached rows of `keys` (None when nothing is cached) and which keys were found."""
        found = np.zeros(len(keys), dtype=bool)
        out: Embeddings | None = None
        for keys_file in self._shards(self.folder(fingerprint)):
            todo = np.flatnonzero(~found)
            if len(todo) == 0:
                break
            shard = _read_shard(keys_file)
            if shard is None or (out is not None and shard[1].shape[1] != out.shape[1]):
                continue
            shard_keys, vectors = shard
            rows, hit = _match(shard_keys, keys[todo])
            if not hit.any():
                continue
            if out is None:
                out = np.empty((len(keys), vectors.shape[1]), dtype=np.float32)
            targets, sources = todo[hit], rows[hit]
            for start in range(0, len(targets), _COPY_ROWS):  # no second copy of a big shard in memory
                out[targets[start : start + _COPY_ROWS]] = vectors[sources[start : start + _COPY_ROWS]]
            found[targets] = True
        return out, found

    def store(self, fingerprint: str, keys: Keys, vectors: Embeddings) -> None:
        """Add a shard of rows, then merge the shards into one if there are more than `MAX_SHARDS`."""
        if len(keys) == 0:
            return
        folder = self.folder(fingerprint)
        folder.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        _save(folder / f"{name}{VECTORS_SUFFIX}", np.ascontiguousarray(vectors, dtype=np.float32))
        _save(folder / f"{name}{KEYS_SUFFIX}", np.ascontiguousarray(keys, dtype=np.uint64))
        shards = list(self._shards(folder))
        if len(shards) > MAX_SHARDS:
            self._merge(folder, shards)

    def usage(self) -> list[ModelUsage]:
        """Rows, shards and bytes on disk of each fingerprint in the cache."""
        if not self.root.is_dir():
            return []
        found = []
        for folder in sorted(path for path in self.root.iterdir() if path.is_dir()):
            rows = shards = 0
            for keys_file in self._shards(folder):
                try:
                    rows += len(np.load(keys_file, mmap_mode="r", allow_pickle=False))
                    shards += 1
                except (OSError, ValueError):
                    continue
            found.append(ModelUsage(folder.name, rows, shards, _size(folder)))
        return found

    def clear(self, fingerprints: Sequence[str] | None = None) -> list[ModelUsage]:
        """Delete the given fingerprints' folders (None: all of them); returns what was deleted."""
        removed = [usage for usage in self.usage() if fingerprints is None or usage.fingerprint in fingerprints]
        for usage in removed:
            shutil.rmtree(self.root / usage.fingerprint, ignore_errors=True)
        return removed

    @staticmethod
    def _shards(folder: Path) -> Iterator[Path]:
        """The complete shards of a folder, largest first (most hits first)."""
        if not folder.is_dir():
            return iter(())
        sized = []
        for keys_file in folder.glob(f"*{KEYS_SUFFIX}"):
            try:
                sized.append((-keys_file.stat().st_size, keys_file.name, keys_file))
            except FileNotFoundError:
                continue
        return (keys_file for _, _, keys_file in sorted(sized))

    def _merge(self, folder: Path, shards: list[Path]) -> None:
        """Write the distinct rows of `shards` as one shard, then delete them (keys file first)."""
        loaded = [shard for shard in map(_read_shard, shards) if shard is not None]
        if not loaded:
            return
        keys = np.concatenate([shard_keys for shard_keys, _ in loaded])
        _, first = np.unique(keys, axis=0, return_index=True)
        dim = loaded[0][1].shape[1]
        name = uuid.uuid4().hex
        tmp = folder / f".{name}{VECTORS_SUFFIX}.tmp"
        merged = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(first), dim))
        offsets = np.cumsum([0] + [len(shard_keys) for shard_keys, _ in loaded])
        first.sort()
        for index, (_, vectors) in enumerate(loaded):
            start, stop = np.searchsorted(first, offsets[index : index + 2])
            merged[start:stop] = vectors[first[start:stop] - offsets[index]]
        merged.flush()
        del merged
        os.replace(tmp, folder / f"{name}{VECTORS_SUFFIX}")
        _save(folder / f"{name}{KEYS_SUFFIX}", keys[first])
        for keys_file in shards:
            for file in (keys_file, keys_file.with_name(keys_file.name.replace(KEYS_SUFFIX, VECTORS_SUFFIX))):
                file.unlink(missing_ok=True)


def _save(path: Path, array: NDArray[np.generic]) -> None:
    """Write an `.npy` under a temporary name in the same folder, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with tmp.open("wb") as handle:
        np.save(handle, array, allow_pickle=False)
    os.replace(tmp, path)


def _size(folder: Path) -> int:
    """Bytes of the files in a folder, stray temporary files included."""
    total = 0
    for file in folder.iterdir():
        try:
            total += file.stat().st_size
        except FileNotFoundError:
            continue
    return total


def _read_shard(keys_file: Path) -> tuple[Keys, NDArray[np.float32]] | None:
    """A shard's keys (in memory) and vectors (memory-mapped), or None if it is gone or unreadable."""
    vectors_file = keys_file.with_name(keys_file.name.replace(KEYS_SUFFIX, VECTORS_SUFFIX))
    try:
        keys = np.load(keys_file, allow_pickle=False)
        vectors = np.load(vectors_file, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    valid = (
        keys.dtype == np.uint64
        and keys.shape[1:] == (2,)
        and vectors.dtype == np.float32
        and vectors.ndim == 2
        and len(vectors) == len(keys) > 0
    )
    return (keys, vectors) if valid else None


def _match(table: Keys, queries: Keys) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """For each query key, a row of the (non-empty) `table` holding it, and whether there is one."""
    order = np.argsort(table[:, 0])
    position = np.minimum(np.searchsorted(table[order, 0], queries[:, 0]), len(table) - 1)
    rows = order[position].astype(np.int64)
    return rows, (table[rows] == queries).all(axis=1)
