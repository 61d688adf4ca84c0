"""The pair-scorer protocol of re-rankers (cross-encoders read both questions at once), and its score cache.

Backends load pair scorers (`dupfind.vectors.backends.load_pair_scorer`); `dupfind.pairs.rerank.Reranker` wraps
one with the cache and progress, as `Embedder` wraps an encoder."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from dupfind.io.cache_dir import cache_dir
from dupfind.vectors.cache import EmbeddingCache, Keys

Scores = NDArray[np.float32]


@runtime_checkable
class PairScorer(Protocol):
    """Anything that scores a batch of question pairs, a probability of duplicate per pair.

    `score_batch` must be a pure function of its pairs; `fingerprint` identifies model and backend for the cache.
    """

    @property
    def fingerprint(self) -> str: ...

    def score_batch(self, first: Sequence[str], second: Sequence[str]) -> Scores: ...

    def count_tokens(self, first: Sequence[str], second: Sequence[str]) -> list[int]: ...


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
