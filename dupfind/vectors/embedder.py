"""The one way from texts to vectors: an encoder, the embedding cache, the batch size and a progress callback."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from dupfind.vectors.cache import EmbeddingCache, text_keys
from dupfind.vectors.encoding import (
    DEFAULT_BATCH_SIZE,
    Embeddings,
    Encoder,
    Progress,
    TokenCounts,
    check_batch_size,
    count_truncated,
    encode,
    token_counts,
)


@dataclass(frozen=True)
class Embedder:
    """Turns texts into L2-normalised embeddings, one row per text, encoding each distinct text once.

    With a `cache`, texts already cached for this encoder are read back instead of encoded, and the new
    ones are stored. `progress(done, total)` is called as texts are encoded. Every pipeline of dupfind
    (mining, groups, dedupe, search, index, evaluation, calibration) takes an `Embedder`.
    """

    encoder: Encoder
    cache: EmbeddingCache | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    progress: Progress | None = None

    def __post_init__(self) -> None:
        check_batch_size(self.batch_size)

    @property
    def fingerprint(self) -> str:
        """Identifies the model and backend: embeddings of two embedders are comparable when these agree."""
        return self.encoder.fingerprint

    @property
    def max_seq_length(self) -> int:
        """Tokens the model reads of a text; the rest is cut off."""
        return self.encoder.max_seq_length

    def with_progress(self, progress: Progress | None) -> Embedder:
        """The same embedder reporting to another progress callback."""
        return replace(self, progress=progress)

    def count_tokens(self, texts: Sequence[str]) -> TokenCounts:
        """Each text's number of tokens (to order batches and to warn of truncation), in bounded memory."""
        return token_counts(self.encoder, texts)

    def count_truncated(self, tokens: TokenCounts) -> int:
        """How many texts of these token counts are longer than the model reads."""
        return count_truncated(self.encoder, tokens)

    def embed(self, texts: Sequence[str], tokens: TokenCounts | None = None) -> Embeddings:
        """One embedding row per text, in order. `tokens`: the texts' `count_tokens`, when already known."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        first: dict[str, int] = {}
        rows = np.fromiter((first.setdefault(text, len(first)) for text in texts), np.int64, len(texts))
        distinct = list(first)
        distinct_tokens = None
        if tokens is not None:
            distinct_tokens = np.empty(len(distinct), dtype=np.int64)
            distinct_tokens[rows] = tokens
        embeddings = self._embed_distinct(distinct, distinct_tokens)
        return embeddings if len(distinct) == len(texts) else embeddings[rows]

    def similarity(self, text_a: str, text_b: str) -> float:
        """Cosine similarity of two texts."""
        a, b = self.embed([text_a, text_b])
        return float(np.dot(a, b))

    def _embed_distinct(self, texts: list[str], tokens: TokenCounts | None) -> Embeddings:
        if self.cache is None:
            return encode(self.encoder, texts, self.batch_size, self.progress, tokens)
        keys = text_keys(texts)
        out, found = self.cache.lookup(self.fingerprint, keys)
        missing = np.flatnonzero(~found)
        if out is not None and len(missing) == 0:
            return out
        fresh_tokens = None if tokens is None else tokens[missing]
        fresh = encode(self.encoder, [texts[i] for i in missing.tolist()], self.batch_size, self.progress, fresh_tokens)
        try:
            self.cache.store(self.fingerprint, keys[missing], fresh)
        except OSError as exc:
            warnings.warn(f"embedding cache not written ({exc})", stacklevel=2)
        if out is None:
            return fresh
        out[missing] = fresh
        return out
