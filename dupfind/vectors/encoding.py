"""The encoder protocol, and encoding texts into L2-normalised embeddings batch by batch (see `embedder`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from dupfind.errors import DupfindError

Embeddings = NDArray[np.float32]
Progress = Callable[[int, int], None]
TokenCounts = NDArray[np.int64]
DEFAULT_BATCH_SIZE = 64
# Larger batches gain nothing on a CPU (bench/bench_encode.py) and hold the activations of every text at once:
# `--batch-size 100000` took 4.6 GB.
MAX_BATCH_SIZE = 1024
COUNT_CHUNK = 8192  # texts tokenised at once to count tokens (1M at once held 2.9 GB of token objects)


def available_cores() -> int:
    """The number of CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@runtime_checkable
class Encoder(Protocol):
    """Anything that maps a batch of texts to one embedding row per text.

    `encode_batch` must be a pure function of its texts, so that it can run anywhere
    (another process, a Ray or Spark worker); `fingerprint` identifies model and backend
    for the embedding cache.
    """

    @property
    def fingerprint(self) -> str: ...

    @property
    def max_seq_length(self) -> int: ...

    def encode_batch(self, texts: Sequence[str]) -> Embeddings: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


def check_batch_size(batch_size: int) -> None:
    """Reject batch sizes that are not positive or would hold too much in memory at once."""
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise DupfindError(f"the batch size must be between 1 and {MAX_BATCH_SIZE}, got {batch_size}")


def normalize(embeddings: NDArray[np.floating]) -> Embeddings:
    """Scale each row to unit length (zero rows stay zero)."""
    array = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(array / norms, dtype=np.float32)


def encode(
    encoder: Encoder,
    texts: Sequence[str],
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
    tokens: TokenCounts | None = None,
) -> Embeddings:
    """Encode texts in batches of equal token counts, in input order, L2-normalised.

    Sorting by tokens rather than characters cuts the padding the model computes on from ~50 % of the
    tokens to ~2 % on Quora questions (bench/bench_encode.py). `tokens`: the texts' `token_counts` when
    already known (else they are counted). `progress(done, total)` is called after each batch with the
    number of texts it encoded.
    """
    check_batch_size(batch_size)
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    if len(texts) <= batch_size:  # one batch: its order does not change its padding
        order = np.arange(len(texts))
    else:
        counts = token_counts(encoder, texts) if tokens is None else tokens
        order = np.argsort(-np.minimum(counts, encoder.max_seq_length), kind="stable")
    out: Embeddings | None = None
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch = normalize(encoder.encode_batch([texts[i] for i in rows]))
        if out is None:
            out = np.empty((len(texts), batch.shape[1]), dtype=np.float32)
        out[rows] = batch
        if progress is not None:
            progress(len(rows), len(texts))
    assert out is not None
    return out


def token_counts(encoder: Encoder, texts: Sequence[str], chunk: int = COUNT_CHUNK) -> TokenCounts:
    """The number of tokens of each text (exact up to the model's limit, above it only "over"); tokenised a chunk
    at a time to bound the memory used."""
    counts = np.empty(len(texts), dtype=np.int64)
    for start in range(0, len(texts), chunk):
        counts[start : start + chunk] = encoder.count_tokens(texts[start : start + chunk])
    return counts


def count_truncated(encoder: Encoder, tokens: TokenCounts) -> int:
    """How many texts, of these `token_counts`, are longer than the model reads (they are truncated when encoded)."""
    return int(np.count_nonzero(tokens > encoder.max_seq_length))


def cosines(first: Embeddings, second: Embeddings) -> NDArray[np.float32]:
    """Row-by-row cosine of two stacks of L2-normalised embeddings."""
    scores: NDArray[np.float32] = np.einsum("ij,ij->i", first, second).astype(np.float32)
    return scores
