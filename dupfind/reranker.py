"""Re-ranking: a cross-encoder reads both questions of each candidate pair and decides, after the bi-encoder proposed.

The bi-encoder proposes candidates at a recall-oriented threshold stored with the re-ranker (per bi-encoder
fingerprint, chosen on a held-out split of train to keep >= 98 % of its gold duplicates); the cross-encoder's
score, a probability in [0, 1], decides at the re-ranker's own calibrated threshold. Scores are computed in
batches of pairs sorted by length and cached on disk like embeddings (keyed by both texts and the model).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from dupfind.cache_dir import cache_dir
from dupfind.embedding_cache import EmbeddingCache, Keys
from dupfind.encoding import DEFAULT_BATCH_SIZE, Progress, check_batch_size
from dupfind.errors import DupfindError
from dupfind.mining import MinedPairs
from dupfind.model import THRESHOLDS_FILE, ModelRef, Thresholds, model_dir
from dupfind.search import Neighbours

Scores = NDArray[np.float32]
RERANK_KEY = "rerank"


@runtime_checkable
class PairScorer(Protocol):
    """Anything that scores a batch of question pairs, a probability of duplicate per pair.

    `score_batch` must be a pure function of its pairs; `fingerprint` identifies model and backend for the cache.
    """

    @property
    def fingerprint(self) -> str: ...

    def score_batch(self, first: Sequence[str], second: Sequence[str]) -> Scores: ...

    def count_tokens(self, first: Sequence[str], second: Sequence[str]) -> list[int]: ...


@dataclass(frozen=True)
class Candidates:
    """Where a bi-encoder proposes candidates for the re-ranker: cosine thresholds for pairs and for mining."""

    pair: float
    mining: float


@dataclass(frozen=True)
class RerankSettings:
    """What a re-ranker stores beside its weights (`dupfind.json`, key `rerank`).

    `thresholds`: its own score's best-F1 thresholds (pair, mining). `candidates`: the bi-encoder threshold of
    each bi-encoder it was calibrated with, by model fingerprint; `margin`: how far below a bi-encoder's own
    thresholds to propose candidates when it is not one of those.
    """

    thresholds: Thresholds
    candidates: dict[str, Candidates]
    margin: Candidates

    def candidates_for(self, model_fingerprint: str, own: Thresholds) -> Candidates:
        """The candidate thresholds of a bi-encoder: calibrated if known, else its own thresholds less the margin."""
        if model_fingerprint in self.candidates:
            return self.candidates[model_fingerprint]
        return Candidates(own.pair - self.margin.pair, own.mining - self.margin.mining)

    def to_json(self) -> dict[str, object]:
        return {
            "pair": self.thresholds.pair,
            "mining": self.thresholds.mining,
            "candidates": {key: vars(value) for key, value in self.candidates.items()},
            "margin": vars(self.margin),
        }

    @classmethod
    def from_json(cls, data: object, source: Path) -> RerankSettings:
        try:
            assert isinstance(data, dict)
            candidates = {
                str(key): Candidates(float(value["pair"]), float(value["mining"]))
                for key, value in dict(data["candidates"]).items()
            }
            margin = Candidates(float(data["margin"]["pair"]), float(data["margin"]["mining"]))
            return cls(Thresholds(float(data["pair"]), float(data["mining"])), candidates, margin)
        except (AssertionError, KeyError, TypeError, ValueError) as exc:
            raise DupfindError(f"{source}: not a re-ranker's settings ({type(exc).__name__}: {exc})") from exc


def read_settings(ref: ModelRef) -> RerankSettings:
    """The re-ranker settings stored in a model's `dupfind.json`; a `DupfindError` if it is not a re-ranker."""
    file = model_dir(ref) / THRESHOLDS_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DupfindError(f"'{ref.name}' is not a dupfind re-ranker: cannot read {file} ({exc})") from exc
    if not isinstance(data, dict) or RERANK_KEY not in data:
        raise DupfindError(f"'{ref.name}' is not a dupfind re-ranker: {file} has no '{RERANK_KEY}' settings")
    return RerankSettings.from_json(data[RERANK_KEY], file)


def write_settings(directory: Path, settings: RerankSettings, details: dict[str, object]) -> None:
    """Store a re-ranker's settings and how they were found in `directory/dupfind.json`."""
    data = {RERANK_KEY: settings.to_json(), "calibration": details}
    (directory / THRESHOLDS_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def pair_keys(first: Sequence[str], second: Sequence[str]) -> Keys:
    """The cache key of each ordered pair: a 16-byte BLAKE2b of both texts, unambiguous whatever they hold."""
    digests = b"".join(
        hashlib.blake2b(
            f"{len(a)}:{a}{b}".encode("utf-8", "surrogatepass"), digest_size=16, person=b"dupfind-pair"
        ).digest()
        for a, b in zip(first, second, strict=True)
    )
    return np.frombuffer(digests, dtype="<u8").reshape(-1, 2).astype(np.uint64)


def score_cache(root: Path | None = None) -> EmbeddingCache:
    """The disk cache of re-rank scores (`cache_dir()/rerank`), one score per pair."""
    return EmbeddingCache(root if root is not None else cache_dir() / "rerank", unit_rows=False)


@dataclass(frozen=True)
class Reranker:
    """Scores question pairs with a cross-encoder: each distinct pair once, read from the cache when it is there.

    Pairs are scored in batches sorted by token count (little padding); `progress(scored, total)` is called after
    each batch with the number of pairs it scored.
    """

    scorer: PairScorer
    settings: RerankSettings
    cache: EmbeddingCache | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    progress: Progress | None = None

    def __post_init__(self) -> None:
        check_batch_size(self.batch_size)

    def with_progress(self, progress: Progress | None) -> Reranker:
        return replace(self, progress=progress)

    def score(self, first: Sequence[str], second: Sequence[str]) -> Scores:
        """The re-rank score of each pair `(first[i], second[i])`, in order."""
        if len(first) != len(second):
            raise ValueError("first and second must hold as many texts")
        if not first:
            return np.zeros(0, dtype=np.float32)
        keys = pair_keys(first, second)
        out = np.empty(len(first), dtype=np.float32)
        found = np.zeros(len(first), dtype=bool)
        if self.cache is not None:
            cached, found = self.cache.lookup(self.scorer.fingerprint, keys)
            if cached is not None:
                out[found] = cached[found, 0]
        missing = np.flatnonzero(~found)
        _, distinct, inverse = np.unique(keys[missing], axis=0, return_index=True, return_inverse=True)
        todo = missing[distinct]
        fresh = self._score([first[i] for i in todo.tolist()], [second[i] for i in todo.tolist()])
        out[missing] = fresh[inverse.ravel()]
        if self.cache is not None and len(todo):
            try:
                self.cache.store(self.scorer.fingerprint, keys[todo], fresh[:, None])
            except OSError as exc:
                warnings.warn(f"re-rank cache not written ({exc})", stacklevel=2)
        return out

    def rerank(self, pairs: MinedPairs, texts: Sequence[str], threshold: float) -> MinedPairs:
        """The candidate `pairs` (rows of `texts`) whose re-rank score is >= `threshold`, with that score, best
        first by it."""
        if not 0.0 <= threshold <= 1.0:
            raise DupfindError(f"a re-rank threshold is a probability, between 0 and 1, got {threshold}")
        scores = self.score([texts[row] for row in pairs.left.tolist()], [texts[row] for row in pairs.right.tolist()])
        kept = replace(pairs, rerank_scores=scores).take(np.flatnonzero(scores >= threshold))
        return kept.sorted()

    def rerank_neighbours(self, found: Neighbours, queries: Sequence[str], corpus: Sequence[str]) -> Neighbours:
        """Search hits (`found.rows[q]` of `corpus` for `queries[q]`) with their re-rank scores, best first by
        them within each query (ties: cosine order)."""
        rows = found.rows
        first = [queries[q] for q in range(rows.shape[0]) for _ in range(rows.shape[1])]
        scores = self.score(first, [corpus[row] for row in rows.ravel().tolist()]).reshape(rows.shape)
        order = np.argsort(-scores, axis=1, kind="stable")
        return Neighbours(
            np.take_along_axis(rows, order, 1),
            np.take_along_axis(found.scores, order, 1),
            np.take_along_axis(scores, order, 1),
        )

    def _score(self, first: list[str], second: list[str]) -> Scores:
        out = np.empty(len(first), dtype=np.float32)
        if not first:
            return out
        tokens = np.asarray(self.scorer.count_tokens(first, second), dtype=np.int64)
        order = np.argsort(tokens, kind="stable")
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size].tolist()
            out[batch] = self.scorer.score_batch([first[i] for i in batch], [second[i] for i in batch])
            if self.progress is not None:
                self.progress(len(batch), len(first))
        return out
