"""A disk cache of embeddings keyed by (encoder fingerprint, exact text), safe under concurrent and killed runs.

Each model has a folder `<root>/<fingerprint>/` of append-only shards. A shard is two `.npy` files written
once and never changed: `<name>.<checksum>.vectors.npy` (float32, one unit-length row per text) first, then
`<name>.<checksum>.keys.npy` (the 16-byte BLAKE2b digests of the UTF-8 texts, as uint64 pairs), each written
under a temporary name, fsynced and renamed into place. The checksum in the names is a 16-byte BLAKE2b of the
vectors' and keys' data. A shard exists once its keys file does, so readers never see a partial shard, two
runs writing at once write different shards, and a killed run leaves at most a stray temporary file.
Everything is loaded with `allow_pickle=False`; a shard whose rows are read is checked first (checksum,
dimension, finite unit-length rows), and a damaged one is deleted with a warning, so its texts are encoded
again.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from dupfind.io.atomic import fsync_file, fsync_folder, replacing
from dupfind.io.cache_dir import cache_dir
from dupfind.vectors.encoding import Embeddings
from dupfind.vectors.row_file import copy_rows, mapping_of

Keys = NDArray[np.uint64]
KEYS_SUFFIX = ".keys.npy"
VECTORS_SUFFIX = ".vectors.npy"
MAX_SHARDS = 16
NORM_TOLERANCE = 1e-3  # a stored row's length may differ from 1 by this much (float32 rounding is ~1e-7)
_COPY_ROWS = 1 << 14  # rows read, checked or copied at a time: 25 MB of 384-dim vectors
_SHARD_NAME = re.compile(r"[0-9a-f]{32}\.([0-9a-f]{32})" + re.escape(KEYS_SUFFIX))


class _DamagedShard(Exception):
    """A shard whose files do not hold what was written."""


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


@dataclass(frozen=True)
class _Hits:
    """Keys found in one shard: its (mapped) rows, the keys' positions among those asked, and their rows there."""

    vectors: NDArray[np.float32]
    targets: NDArray[np.intp]
    sources: NDArray[np.int64]


class EmbeddingCache:
    """Embeddings on disk under `root` (default `cache_dir()/embeddings`), one folder per encoder fingerprint.

    `unit_rows`: every row is a unit vector (embeddings), checked on the way in and out; else rows need only be
    finite (the re-ranker's one score per pair, `dupfind.vectors.pair_scorer.score_cache`).
    """

    def __init__(self, root: Path | None = None, unit_rows: bool = True) -> None:
        self.root = root if root is not None else cache_dir() / "embeddings"
        self.unit_rows = unit_rows

    def folder(self, fingerprint: str) -> Path:
        return self.root / re.sub(r"[^A-Za-z0-9._-]", "_", fingerprint)

    def lookup(self, fingerprint: str, keys: Keys) -> tuple[Embeddings | None, NDArray[np.bool_]]:
        """The cached rows of `keys` (None when nothing is cached) and which keys were found.

        A shard with hits is checked before its rows are used; a damaged one is deleted with a warning.
        """
        found, hits = self._locate(fingerprint, keys)
        if not hits:
            return None, found
        out = np.empty((len(keys), hits[0].vectors.shape[1]), dtype=np.float32)
        for hit in hits:
            order = np.argsort(hit.sources, kind="stable")
            targets, sources = hit.targets[order], hit.sources[order]
            for start, block in _blocks(hit.vectors):
                lo, hi = np.searchsorted(sources, [start, start + len(block)])
                out[targets[lo:hi]] = block[sources[lo:hi] - start]
        return out, found

    def found(self, fingerprint: str, keys: Keys) -> NDArray[np.bool_]:
        """Which keys are cached (their shards checked as `lookup` does), without reading their rows."""
        return self._locate(fingerprint, keys)[0]

    def ordered_blocks(self, fingerprint: str, keys: Keys) -> Iterator[Embeddings]:
        """The rows of `keys`, every one cached, in order, `_COPY_ROWS` at a time: the rows of 1M keys with no more
        than a block of them in memory (the pages read from the shards are dropped as they are copied)."""
        found, hits = self._locate(fingerprint, keys)
        if not found.all():
            raise KeyError(f"{int((~found).sum())} keys are not in {self.folder(fingerprint)}")
        shard = np.empty(len(keys), dtype=np.int64)
        source = np.empty(len(keys), dtype=np.int64)
        for index, hit in enumerate(hits):
            shard[hit.targets], source[hit.targets] = index, hit.sources
        for start in range(0, len(keys), _COPY_ROWS):
            block = np.empty((min(_COPY_ROWS, len(keys) - start), hits[0].vectors.shape[1]), dtype=np.float32)
            for index, hit in enumerate(hits):
                mine = np.flatnonzero(shard[start : start + len(block)] == index)
                block[mine] = copy_rows(hit.vectors, source[start + mine])
            yield block

    def _locate(self, fingerprint: str, keys: Keys) -> tuple[NDArray[np.bool_], list[_Hits]]:
        """Which keys are cached, and where: per shard holding some (checked first; a damaged one is deleted with a
        warning), its mapped rows, the keys' positions and their rows in it."""
        found = np.zeros(len(keys), dtype=bool)
        hits: list[_Hits] = []
        for keys_file in self._shards(self.folder(fingerprint)):
            todo = np.flatnonzero(~found)
            if len(todo) == 0:
                break
            try:
                shard = _read_shard(keys_file)
                if shard is None:
                    continue
                shard_keys, vectors = shard
                rows, hit = _match(shard_keys, keys[todo])
                if not hit.any():
                    continue
                if hits and vectors.shape[1] != hits[0].vectors.shape[1]:
                    raise _DamagedShard(f"{vectors.shape[1]} dimensions, other shards {hits[0].vectors.shape[1]}")
                _verify(keys_file, shard_keys, vectors, self.unit_rows)
            except _DamagedShard as exc:
                _drop(keys_file, str(exc))
                continue
            hits.append(_Hits(vectors, todo[hit], rows[hit]))
            found[todo[hit]] = True
        return found, hits

    def store(self, fingerprint: str, keys: Keys, vectors: Embeddings, compact: bool = True) -> None:
        """Add a shard of the valid rows (finite, of unit length if `unit_rows`), then merge the shards as `compact`
        does, unless `compact` is False (writers that store at once, as the Ray engine's actors, leave it to one)."""
        good = _valid_rows(vectors, self.unit_rows)
        keys, vectors = keys[good], vectors[good]
        if len(keys) == 0:
            return
        folder = self.folder(fingerprint)
        folder.mkdir(parents=True, exist_ok=True)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        name = f"{uuid.uuid4().hex}.{_checksum(vectors, keys)}"
        _save(folder / f"{name}{VECTORS_SUFFIX}", vectors)
        _save(folder / f"{name}{KEYS_SUFFIX}", keys)
        if compact:
            self.compact(fingerprint)

    def compact(self, fingerprint: str) -> None:
        """Merge a fingerprint's shards into one if there are more than `MAX_SHARDS` (damaged ones are dropped)."""
        folder = self.folder(fingerprint)
        shards = list(self._shards(folder))
        if len(shards) > MAX_SHARDS:
            self._merge(folder, shards)

    def usage(self) -> list[ModelUsage]:
        """Rows, shards and bytes on disk of each fingerprint in the cache; unreadable shards count no rows."""
        try:
            folders = sorted(path for path in self.root.iterdir() if path.is_dir())
        except OSError:
            return []
        found = []
        for folder in folders:
            rows = shards = 0
            for keys_file in self._shards(folder):
                try:
                    rows += len(np.load(keys_file, mmap_mode="r", allow_pickle=False))
                    shards += 1
                except (OSError, ValueError, EOFError, TypeError):
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
        try:
            candidates = [file for file in folder.iterdir() if _SHARD_NAME.fullmatch(file.name)]
        except OSError:
            return iter(())
        sized = []
        for keys_file in candidates:
            try:
                sized.append((-keys_file.stat().st_size, keys_file.name, keys_file))
            except FileNotFoundError:
                continue
        return (keys_file for _, _, keys_file in sorted(sized))

    def _merge(self, folder: Path, shards: list[Path]) -> None:
        """Write the distinct rows of the sound `shards` as one shard, then delete them (keys file first)."""
        loaded = []
        for keys_file in shards:
            try:
                shard = _read_shard(keys_file)
                if shard is not None:
                    _verify(keys_file, *shard, self.unit_rows)
                    loaded.append(shard)
            except _DamagedShard as exc:
                _drop(keys_file, str(exc))
        if not loaded or len({vectors.shape[1] for _, vectors in loaded}) > 1:
            return
        keys = np.concatenate([shard_keys for shard_keys, _ in loaded])
        _, first = np.unique(keys, axis=0, return_index=True)
        dim = loaded[0][1].shape[1]
        tmp = folder / f".{uuid.uuid4().hex}{VECTORS_SUFFIX}.tmp"
        try:
            offsets = np.cumsum([0] + [len(shard_keys) for shard_keys, _ in loaded])
            first.sort()
            merged_keys = np.ascontiguousarray(keys[first])
            digest = hashlib.blake2b(digest_size=16)
            with tmp.open("wb") as file:  # written a block at a time, as `_checksum` reads
                header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False}
                np.lib.format.write_array_header_1_0(file, header | {"shape": (len(first), dim)})
                for index, (_, vectors) in enumerate(loaded):
                    kept = first[slice(*np.searchsorted(first, offsets[index : index + 2]))] - offsets[index]
                    for start, block in _blocks(vectors):
                        lo, hi = np.searchsorted(kept, [start, start + len(block)])
                        rows = np.ascontiguousarray(block[kept[lo:hi] - start])
                        digest.update(rows.data)
                        file.write(rows.data)
            digest.update(merged_keys.data)
            name = f"{uuid.uuid4().hex}.{digest.hexdigest()}"
            fsync_file(tmp)
            os.replace(tmp, folder / f"{name}{VECTORS_SUFFIX}")
        finally:
            tmp.unlink(missing_ok=True)
        _save(folder / f"{name}{KEYS_SUFFIX}", merged_keys)
        for keys_file in shards:
            _delete(keys_file)


def _save(path: Path, array: NDArray[np.generic]) -> None:
    """Write an `.npy` under a temporary name in the same folder, fsync it, then rename it into place."""
    with replacing(path) as handle:
        np.save(handle, array, allow_pickle=False)


def _size(folder: Path) -> int:
    """Bytes of the files in a folder, stray temporary files included."""
    total = 0
    for file in folder.iterdir():
        try:
            total += file.stat().st_size
        except FileNotFoundError:
            continue
    return total


def _vectors_file(keys_file: Path) -> Path:
    return keys_file.with_name(keys_file.name.replace(KEYS_SUFFIX, VECTORS_SUFFIX))


def _read_shard(keys_file: Path) -> tuple[Keys, NDArray[np.float32]] | None:
    """A shard's keys (in memory) and vectors (memory-mapped); None if a concurrent merge deleted it."""
    try:
        keys = np.load(keys_file, allow_pickle=False)
        vectors = np.load(_vectors_file(keys_file), mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError, TypeError) as exc:
        raise _DamagedShard(f"unreadable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    valid = (
        keys.dtype == np.uint64
        and keys.shape[1:] == (2,)
        and vectors.dtype == np.float32
        and vectors.ndim == 2
        and vectors.shape[1] > 0
        and vectors.flags.c_contiguous
        and len(vectors) == len(keys) > 0
    )
    if not valid:
        raise _DamagedShard(f"keys {keys.dtype}{list(keys.shape)} and vectors {vectors.dtype}{list(vectors.shape)}")
    return keys, vectors


def _verify(keys_file: Path, keys: Keys, vectors: NDArray[np.float32], unit: bool) -> None:
    """Raise `_DamagedShard` unless the shard's data match the checksum in its name and every row is valid."""
    match = _SHARD_NAME.fullmatch(keys_file.name)
    if match is None or _checksum(vectors, keys) != match.group(1):
        raise _DamagedShard("checksum mismatch")
    if not _valid_rows(vectors, unit).all():
        raise _DamagedShard("rows that are not finite unit vectors" if unit else "rows that are not finite")


def _blocks(vectors: NDArray[np.float32]) -> Iterator[tuple[int, NDArray[np.float32]]]:
    """The rows of `vectors` a block of `_COPY_ROWS` at a time, with the first row's index. A memory-mapped shard's
    blocks are copies, and the pages read for each are dropped at once (`dupfind.vectors.row_file.drop_pages`, for
    their range only)."""
    mapping = mapping_of(vectors)
    if mapping is None:
        for start in range(0, len(vectors), _COPY_ROWS):
            yield start, vectors[start : start + _COPY_ROWS]
        return
    first = int(getattr(vectors, "offset", 0)) % mmap.ALLOCATIONGRANULARITY  # where the rows begin in the mapping
    for start in range(0, len(vectors), _COPY_ROWS):
        copied = np.array(vectors[start : start + _COPY_ROWS])
        begin = first + start * vectors.shape[1] * vectors.itemsize
        aligned = begin - begin % mmap.PAGESIZE
        with suppress(OSError, ValueError):  # only memory is at stake
            mapping.madvise(mmap.MADV_DONTNEED, aligned, begin + copied.nbytes - aligned)
        yield start, copied


def _checksum(vectors: NDArray[np.float32], keys: Keys) -> str:
    """A 16-byte BLAKE2b of the vectors' then the keys' data, read a block of rows at a time."""
    digest = hashlib.blake2b(digest_size=16)
    for _, block in _blocks(vectors):
        digest.update(np.ascontiguousarray(block).data)
    digest.update(np.ascontiguousarray(keys).data)
    return digest.hexdigest()


def _valid_rows(vectors: NDArray[np.float32], unit: bool) -> NDArray[np.bool_]:
    """Which rows are finite and, if `unit`, of length 1 (within `NORM_TOLERANCE`), checked a block at a time."""
    good = np.empty(len(vectors), dtype=bool)
    for start, rows in _blocks(vectors):
        block = np.asarray(rows, dtype=np.float64)
        if not unit:
            good[start : start + len(block)] = np.isfinite(block).all(axis=1)
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        good[start : start + len(block)] = np.abs(norms - 1.0) <= NORM_TOLERANCE  # False for NaN and inf
    return good


def _drop(keys_file: Path, reason: str) -> None:
    """Delete a damaged shard and say so once, in one line."""
    warnings.warn(
        f"embedding cache: damaged shard {keys_file} ({reason}) deleted; its questions are encoded again",
        stacklevel=3,
    )
    _delete(keys_file)


def _delete(keys_file: Path) -> None:
    """Delete a shard, keys file first, so that it stops existing before its vectors go."""
    for file in (keys_file, _vectors_file(keys_file)):
        try:
            file.unlink(missing_ok=True)
        except OSError:
            continue
    fsync_folder(keys_file.parent)


def _match(table: Keys, queries: Keys) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """For each query key, a row of the (non-empty) `table` holding it, and whether there is one."""
    order = np.argsort(table[:, 0])
    position = np.minimum(np.searchsorted(table[order, 0], queries[:, 0]), len(table) - 1)
    rows = order[position].astype(np.int64)
    return rows, (table[rows] == queries).all(axis=1)
