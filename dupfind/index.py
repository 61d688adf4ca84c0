"""A persistent corpus: questions, their embeddings and the model that made them, in one zip file.

The file holds `meta.json` (format, model name and fingerprint, thresholds), `embeddings.npy`
(float32, read without pickle) and `questions.parquet` (`id`, `question`); `unzip` shows them.
Search is exact (one matrix product per block of queries), which stays fast up to ~200k questions.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dupfind.encoding import Embeddings
from dupfind.errors import DupfindError
from dupfind.model import ModelRef, Thresholds, fingerprint, load_thresholds
from dupfind.search import DEFAULT_SEARCH_K, Neighbours, nearest
from dupfind.tables import atomic_output

INDEX_FORMAT = "dupfind-index"
INDEX_VERSION = 1
INDEX_SUFFIX = ".dfi"
_META, _EMBEDDINGS, _QUESTIONS = "meta.json", "embeddings.npy", "questions.parquet"


@dataclass(frozen=True)
class Index:
    """Questions with their embeddings, and the model (name, fingerprint, thresholds) that encoded them."""

    ids: list[Any]
    texts: list[str]
    embeddings: Embeddings
    model: str
    fingerprint: str
    thresholds: Thresholds

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

    def check_model(self, ref: ModelRef, source: str = "the index") -> None:
        """Refuse a model other than the index's: its embeddings would not be comparable."""
        model_fingerprint = fingerprint(ref)
        if model_fingerprint != self.fingerprint:
            raise DupfindError(
                f"{source} was built with model '{self.model}' (fingerprint {self.fingerprint}), "
                f"not '{ref.name}' ({model_fingerprint}); use that model or rebuild the index"
            )


def new_index(ref: ModelRef, ids: Sequence[Any], texts: Sequence[str], embeddings: Embeddings) -> Index:
    """An index of questions encoded by a model, with that model's calibrated thresholds."""
    empty = np.zeros((0, embeddings.shape[1] if embeddings.ndim == 2 else 0), dtype=np.float32)
    index = Index([], [], empty, ref.name, fingerprint(ref), load_thresholds(ref))
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
    """Read an index written by `save_index`, checking that its parts agree."""
    import pyarrow

    file = Path(path)
    if file.is_dir():
        raise DupfindError(f"{path}: is a directory, not a dupfind index")
    if not file.exists():
        raise DupfindError(f"{path}: no such index")
    try:
        with zipfile.ZipFile(file) as archive:
            missing = [name for name in (_META, _EMBEDDINGS, _QUESTIONS) if name not in archive.namelist()]
            if missing:
                raise DupfindError(f"{path}: not a dupfind index (no {', '.join(missing)})")
            meta = json.loads(archive.read(_META))
            _check_meta(meta)
            with archive.open(_EMBEDDINGS) as member:
                embeddings = np.lib.format.read_array(member, allow_pickle=False)
            questions = pd.read_parquet(io.BytesIO(archive.read(_QUESTIONS)))
    except zipfile.BadZipFile as exc:
        raise DupfindError(f"{path}: not a dupfind index (not a zip file)") from exc
    except (ValueError, OSError, pyarrow.ArrowException) as exc:
        raise DupfindError(f"{path}: corrupt dupfind index ({str(exc).splitlines()[0]})") from exc
    shape = (meta["count"], meta["dim"])
    if embeddings.dtype != np.float32 or embeddings.shape != shape or len(questions) != meta["count"]:
        raise DupfindError(
            f"{path}: corrupt dupfind index (embeddings {embeddings.dtype}{list(embeddings.shape)}, "
            f"{len(questions)} questions; meta.json says {meta['count']}×{meta['dim']} float32)"
        )
    if list(questions.columns) != ["id", "question"]:
        raise DupfindError(f"{path}: corrupt dupfind index (questions.parquet has columns {list(questions.columns)})")
    thresholds = Thresholds(float(meta["thresholds"]["pair"]), float(meta["thresholds"]["mining"]))
    texts = [str(text) for text in questions["question"].tolist()]
    return Index(questions["id"].tolist(), texts, embeddings, str(meta["model"]), str(meta["fingerprint"]), thresholds)


def _check_meta(meta: Any) -> None:
    if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT:
        raise ValueError("meta.json does not describe a dupfind index")
    if meta.get("version") != INDEX_VERSION:
        raise ValueError(f"version {meta.get('version')}; this dupfind reads version {INDEX_VERSION}")
    if meta.get("search") != "exact":
        raise ValueError(f"unknown search structure {meta.get('search')!r}")
    missing = {"model", "fingerprint", "thresholds", "count", "dim"} - meta.keys()
    if missing or not isinstance(meta["thresholds"], dict) or not {"pair", "mining"} <= meta["thresholds"].keys():
        raise ValueError(f"meta.json lacks {', '.join(sorted(missing)) or 'thresholds'}")
