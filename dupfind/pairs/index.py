"""A persistent corpus: questions, their embeddings and the model that made them, in one zip file.

The file holds `meta.json` (format, model name and fingerprint, precision, thresholds), `embeddings.npy`
(float32, read without pickle) and `questions.parquet` (`id`, `question`); `unzip` shows them.
Search is exact (one matrix product per block of queries), which stays fast up to ~200k questions.
An index file is untrusted input: member sizes, the `.npy` header, the Parquet metadata (rows, uncompressed
sizes) and every field of `meta.json` are checked before anything is decompressed or read into memory, and the
model it names is never downloaded. An index is used at the precision it was built at (`check_precision`);
one without a precision (older dupfind) is fp32.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dupfind.errors import DupfindError
from dupfind.io.write import atomic_output
from dupfind.pairs.search import DEFAULT_SEARCH_K, Neighbours, nearest
from dupfind.thresholds import Thresholds, load_thresholds
from dupfind.vectors.encoding import Embeddings
from dupfind.vectors.model import BUILTIN_MODEL, BUILTIN_MODELS, ModelRef, fingerprint, resolve_model

if TYPE_CHECKING:
    import pyarrow

INDEX_FORMAT = "dupfind-index"
INDEX_VERSION = 1
INDEX_SUFFIX = ".dfi"
_META, _EMBEDDINGS, _QUESTIONS = "meta.json", "embeddings.npy", "questions.parquet"
MAX_META_BYTES = 1 << 20
MAX_NPY_HEADER_BYTES = 1 << 16
MAX_DIM = 1 << 16
# A member may inflate to at most this many times its compressed size (plus 1 MB): dupfind writes them
# stored, and Parquet is compressed already, so only a decompression bomb comes near.
MAX_INFLATION = 100
PRECISIONS = ("fp32", "bf16", "int8")
LEGACY_PRECISION = "fp32"  # the precision of an index that names none: dupfind wrote only fp32 ones then


@dataclass(frozen=True)
class Index:
    """Questions with their embeddings, and the model (name, fingerprint, precision, the thresholds of that
    precision) that encoded them. `named_precision`: False for an older index that does not say (fp32)."""

    ids: list[Any]
    texts: list[str]
    embeddings: Embeddings
    model: str
    fingerprint: str
    thresholds: Thresholds
    precision: str = LEGACY_PRECISION
    named_precision: bool = True

    def __len__(self) -> int:
        return len(self.texts)

    def search(self, queries: Embeddings, k: int = DEFAULT_SEARCH_K) -> Neighbours:
        """The `k` nearest questions of each query embedding."""
        return nearest(queries, self.embeddings, k)

    def add(self, ids: Sequence[Any], texts: Sequence[str], embeddings: Embeddings) -> Index:
        """A new index with these questions appended."""
        if len(ids) != len(texts) or len(texts) != len(embeddings):
            raise DupfindError(f"{len(ids)} ids, {len(texts)} texts and {len(embeddings)} embeddings do not match")
        if len(self) and len(embeddings) and embeddings.shape[1] != self.embeddings.shape[1]:
            dims = (embeddings.shape[1], self.embeddings.shape[1])
            raise DupfindError(f"embeddings have {dims[0]} dimensions, the index {dims[1]}")
        if not len(embeddings):
            return self
        stacked = np.concatenate([self.embeddings, embeddings]) if len(self) else embeddings
        return replace(self, ids=[*self.ids, *ids], texts=[*self.texts, *texts], embeddings=stacked)

    def new_ids(self, ids: Sequence[Any], number_on: bool, source: str, path: str) -> list[Any]:
        """The ids of questions to append: `ids`, or with `number_on` row numbers shifted past the index's size.

        Ids already in the index are refused (`source` and `path` name the input and the index in the message).
        """
        new = [len(self) + row for row in ids] if number_on else list(ids)
        clashes = set(map(str, new)) & set(map(str, self.ids))
        if clashes:
            shown = ", ".join(sorted(clashes)[:5]) + (", …" if len(clashes) > 5 else "")
            raise DupfindError(f"{len(clashes)} ids of {source} are already in {path} ({shown})")
        return new

    def find_model(self, model: str | None, source: str = "the index") -> ModelRef:
        """The model to use with this index: `model` (the user's `--model`) if given, else the one the index names.

        The model an index names is never downloaded, whatever it says: it must be the built-in model or a
        local model directory. Either way its content fingerprint must be the index's.
        """
        if model is None and self.model not in (BUILTIN_MODEL, *BUILTIN_MODELS) and not Path(self.model).is_dir():
            raise DupfindError(
                f"{source} was built with model '{self.model}', which is not a local model directory here "
                "(dupfind never downloads a model that a file names); give it with --model"
            )
        ref = resolve_model(self.model if model is None else model)
        self.check_model(ref, source)
        return ref

    def check_precision(self, precision: str, source: str = "the index") -> None:
        """Refuse to encode at another precision than the index's: its vectors and thresholds are of that one."""
        if precision != self.precision:
            raise DupfindError(
                f"{source} holds {self.precision} embeddings, and this run encodes at {precision}: "
                f"give --precision {self.precision} (or rebuild the index)"
            )

    def check_model(self, ref: ModelRef, source: str = "the index") -> None:
        """Refuse a model other than the index's: its embeddings would not be comparable."""
        model_fingerprint = fingerprint(ref)
        if model_fingerprint != self.fingerprint:
            raise DupfindError(
                f"{source} was built with model '{self.model}' (fingerprint {self.fingerprint}), "
                f"not '{ref.name}' ({model_fingerprint}); use that model or rebuild the index"
            )


def new_index(
    ref: ModelRef, ids: Sequence[Any], texts: Sequence[str], embeddings: Embeddings, precision: str = "fp32"
) -> Index:
    """An index of questions encoded by a model at a precision, with that model's thresholds at that precision."""
    empty = np.zeros((0, embeddings.shape[1] if embeddings.ndim == 2 else 0), dtype=np.float32)
    thresholds = load_thresholds(ref, precision)
    index = Index([], [], empty, ref.name, fingerprint(ref), thresholds, precision)
    return index.add(ids, texts, np.asarray(embeddings, dtype=np.float32))


def is_index(path: str) -> bool:
    """Whether a path names an index rather than a question file: a `.dfi` name or a zip file."""
    return path.endswith(INDEX_SUFFIX) or (Path(path).is_file() and zipfile.is_zipfile(path))


def save_index(index: Index, path: str) -> None:
    """Write the index to a file atomically (a temporary file renamed over `path` when complete)."""
    meta = {
        "format": INDEX_FORMAT,
        "version": INDEX_VERSION,
        "model": index.model,
        "fingerprint": index.fingerprint,
        "precision": index.precision,
        "thresholds": {"pair": index.thresholds.pair, "mining": index.thresholds.mining},
        "count": len(index),
        "dim": int(index.embeddings.shape[1]),
        "search": "exact",
    }
    questions = io.BytesIO()
    pd.DataFrame({"id": _uniform(index.ids), "question": index.texts}).to_parquet(questions, index=False)
    with atomic_output(path, binary=True) as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(_META, json.dumps(meta, indent=2) + "\n")
        entry = zipfile.ZipInfo(_EMBEDDINGS, date_time=time.localtime()[:6])
        with archive.open(entry, "w", force_zip64=True) as member:
            np.lib.format.write_array(member, np.ascontiguousarray(index.embeddings), allow_pickle=False)
        archive.writestr(_QUESTIONS, questions.getvalue())


def _uniform(ids: list[Any]) -> list[Any]:
    """Ids as they are if all of one type, else as strings (a Parquet column has one type)."""
    return ids if len({type(value) for value in ids}) <= 1 else [str(value) for value in ids]


def open_index(path: str) -> Index:
    """Read an index written by `save_index`, checking that its parts agree and their sizes before reading them."""
    import pyarrow

    file = Path(path)
    if file.is_dir():
        raise DupfindError(f"{path}: is a directory, not a dupfind index")
    if not file.exists():
        raise DupfindError(f"{path}: no such index")
    try:
        with zipfile.ZipFile(file) as archive:
            members = {info.filename: info for info in archive.infolist()}
            missing = [name for name in (_META, _EMBEDDINGS, _QUESTIONS) if name not in members]
            if missing:
                raise DupfindError(f"{path}: not a dupfind index (no {', '.join(missing)})")
            if members[_META].file_size > MAX_META_BYTES:
                raise ValueError(f"meta.json is {members[_META].file_size} bytes, more than {MAX_META_BYTES}")
            for info in members.values():
                _check_member_size(info)
            meta = _check_meta(json.loads(archive.read(_META)))
            embeddings = _read_embeddings(archive, members[_EMBEDDINGS], meta)
            questions = _read_questions(archive.read(_QUESTIONS), meta)
    except zipfile.BadZipFile as exc:
        raise DupfindError(f"{path}: not a dupfind index (not a zip file)") from exc
    except (ValueError, OSError, EOFError, RecursionError, pyarrow.ArrowException) as exc:
        raise DupfindError(f"{path}: corrupt dupfind index ({str(exc).splitlines()[0]})") from exc
    if len(questions) != meta.count:
        raise DupfindError(f"{path}: corrupt dupfind index ({len(questions)} questions; meta.json says {meta.count})")
    if list(questions.columns) != ["id", "question"]:
        raise DupfindError(f"{path}: corrupt dupfind index (questions.parquet has columns {list(questions.columns)})")
    texts = [str(text) for text in questions["question"].tolist()]
    ids = questions["id"].tolist()
    precision = meta.precision or LEGACY_PRECISION
    return Index(ids, texts, embeddings, meta.model, meta.fingerprint, meta.thresholds, precision, bool(meta.precision))


@contextmanager
def locked(path: str) -> Iterator[None]:
    """Hold an exclusive lock on the index file at `path` (which must exist), for a read-modify-write.

    The lock is an `flock` on the file itself. `save_index` replaces the file, so a writer that waited for
    the lock checks that it locked the file now at `path` (else it locks that one), and so sees the
    previous writer's additions.
    """
    while True:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError as exc:
            raise DupfindError(f"{path}: no such index") from exc
        except OSError as exc:
            raise DupfindError(f"{path}: cannot open ({exc.strerror or exc})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            opened = os.fstat(fd)
            if current is not None and (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino):
                yield
                return
        finally:
            os.close(fd)  # releases the lock


def add_to_index(
    path: str,
    ids: Sequence[Any],
    texts: Sequence[str],
    embeddings: Embeddings,
    fingerprint: str,
    number_on: bool = False,
    source: str = "the input",
    precision: str | None = None,
) -> Index:
    """Append questions to the index file at `path`, under `locked(path)` from reading it to replacing it.

    `embeddings` were made by the model of this `fingerprint` at `precision` (None: the index's), which must
    still be the index's.
    `number_on`: `ids` are row numbers, shifted past the index's size. Ids already in the index are refused.
    Returns the grown index, as saved.
    """
    with locked(path):
        index = open_index(path)
        if index.fingerprint != fingerprint:
            raise DupfindError(f"{path} was rebuilt with another model meanwhile; run again")
        index.check_precision(index.precision if precision is None else precision, path)
        ids = index.new_ids(ids, number_on, source, path)
        grown = index.add(ids, texts, embeddings)
        save_index(grown, path)
    return grown


@dataclass(frozen=True)
class _Meta:
    """The checked fields of `meta.json`."""

    model: str
    fingerprint: str
    thresholds: Thresholds
    count: int
    dim: int
    precision: str | None  # None: not named (an index of an older dupfind)


def _check_member_size(info: zipfile.ZipInfo) -> None:
    """Refuse a member that would inflate far beyond its size in the archive (a decompression bomb)."""
    if info.file_size > MAX_INFLATION * info.compress_size + MAX_META_BYTES:
        raise ValueError(f"{info.filename} inflates from {info.compress_size} to {info.file_size} bytes")


def _check_meta(meta: Any) -> _Meta:
    """The fields of `meta.json`, each checked for type and range (a ValueError says which is wrong)."""
    if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT:
        raise ValueError("meta.json does not describe a dupfind index")
    if meta.get("version") != INDEX_VERSION:
        raise ValueError(f"version {meta.get('version')!r}; this dupfind reads version {INDEX_VERSION}")
    if meta.get("search") != "exact":
        raise ValueError(f"unknown search structure {meta.get('search')!r}")
    missing = {"model", "fingerprint", "thresholds", "count", "dim"} - meta.keys()
    if missing:
        raise ValueError(f"meta.json lacks {', '.join(sorted(missing))}")
    thresholds = meta["thresholds"]
    if not isinstance(thresholds, dict) or not {"pair", "mining"} <= thresholds.keys():
        raise ValueError("meta.json lacks thresholds (pair and mining)")
    for name in ("model", "fingerprint"):
        if not isinstance(meta[name], str) or not meta[name] or len(meta[name]) > 4096:
            raise ValueError(f"meta.json: {name} is not a name: {str(meta[name])[:80]!r}")
    for name in ("pair", "mining"):
        value = thresholds[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1.0 <= value <= 1.0:
            raise ValueError(f"meta.json: the {name} threshold is not a number from -1 to 1: {str(value)[:80]!r}")
    count, dim = meta["count"], meta["dim"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"meta.json: count is not a number of questions: {str(count)[:80]!r}")
    if isinstance(dim, bool) or not isinstance(dim, int) or not 0 <= dim <= MAX_DIM or (count and not dim):
        raise ValueError(f"meta.json: dim is not a number of dimensions: {str(dim)[:80]!r}")
    precision = meta.get("precision")
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"meta.json: unknown precision {str(precision)[:80]!r}")
    pair, mining = float(thresholds["pair"]), float(thresholds["mining"])
    return _Meta(meta["model"], meta["fingerprint"], Thresholds(pair, mining), count, dim, precision)


def _read_questions(raw: bytes, meta: _Meta) -> pd.DataFrame:
    """`questions.parquet`, its metadata checked before any page is decompressed: as many rows as `meta` says,
    and at most `MAX_INFLATION` times its size (plus 1 MB) uncompressed, in all and in each column chunk. Text
    columns stay dictionary-encoded while read, so a value repeated on many rows is decoded once."""
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(io.BytesIO(raw), pre_buffer=False).metadata
    if metadata.num_rows != meta.count:
        raise ValueError(f"questions.parquet has {metadata.num_rows} rows; meta.json says {meta.count}")
    bound = MAX_INFLATION * len(raw) + MAX_META_BYTES
    declared = 0
    for group in range(metadata.num_row_groups):
        for column in range(metadata.num_columns):
            size = metadata.row_group(group).column(column).total_uncompressed_size
            declared += max(size, 0)
            if size < 0 or declared > bound:
                raise ValueError(
                    f"questions.parquet declares {declared} bytes uncompressed, more than {bound} for its {len(raw)}"
                )
    texts = [name for name in ("id", "question") if name in metadata.schema.names]
    file = pq.ParquetFile(io.BytesIO(raw), pre_buffer=False, read_dictionary=texts)
    table: pyarrow.Table = file.read(use_threads=False)
    frame: pd.DataFrame = table.to_pandas(use_threads=False)
    return frame


def _read_embeddings(archive: zipfile.ZipFile, info: zipfile.ZipInfo, meta: _Meta) -> Embeddings:
    """`embeddings.npy`, its header checked against `meta` and its size against the header before the data are read."""
    data_bytes = meta.count * meta.dim * 4
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(member, max_header_size=MAX_NPY_HEADER_BYTES)
        elif version == (2, 0):
            header = np.lib.format.read_array_header_2_0(member, max_header_size=MAX_NPY_HEADER_BYTES)
        else:
            raise ValueError(f"embeddings.npy has an unsupported .npy version {version}")
        shape, fortran_order, dtype = header
        if dtype != np.dtype("<f4") or fortran_order or tuple(shape) != (meta.count, meta.dim):
            order = "Fortran " if fortran_order else ""
            raise ValueError(f"embeddings {order}{dtype}{list(shape)}; meta.json says {meta.count}×{meta.dim} float32")
        header_bytes = member.tell()
        if info.file_size != header_bytes + data_bytes:
            raise ValueError(f"embeddings.npy is {info.file_size} bytes, not {header_bytes + data_bytes}")
        embeddings = np.empty((meta.count, meta.dim), dtype=np.float32)
        buffer, done = embeddings.reshape(-1).data.cast("B"), 0
        while done < data_bytes:
            chunk = member.read(min(1 << 24, data_bytes - done))
            if not chunk:
                raise ValueError("embeddings.npy is truncated")
            buffer[done : done + len(chunk)] = chunk
            done += len(chunk)
    if not np.isfinite(embeddings).all():
        raise ValueError("embeddings.npy holds values that are not finite")
    return embeddings
