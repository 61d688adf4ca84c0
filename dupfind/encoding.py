"""Turning texts into L2-normalised embeddings, batch by batch, through any backend."""

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
BACKENDS = ("torch", "onnx", "openvino")
# The fastest backend whose embeddings agree with torch fp32 at cosine >= 0.9999 on real questions
# (bench/bench_encode.py measures it).
DEFAULT_BACKEND = "openvino"
DEFAULT_BATCH_SIZE = 64
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
    if batch_size < 1:
        raise DupfindError(f"--batch-size must be at least 1, got {batch_size}")
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
    """The number of tokens of each text, untruncated; tokenised a chunk at a time to bound the memory used."""
    counts = np.empty(len(texts), dtype=np.int64)
    for start in range(0, len(texts), chunk):
        counts[start : start + chunk] = encoder.count_tokens(texts[start : start + chunk])
    return counts


def count_truncated(encoder: Encoder, tokens: TokenCounts) -> int:
    """How many texts, of these `token_counts`, are longer than the model reads (they are truncated when encoded)."""
    return int(np.count_nonzero(tokens > encoder.max_seq_length))


def similarity(encoder: Encoder, text_a: str, text_b: str) -> float:
    """Cosine similarity of two texts."""
    a, b = encode(encoder, [text_a, text_b])
    return float(np.dot(a, b))


def load_encoder(model: str | None = None, backend: str | None = None) -> Encoder:
    """Load a model (None: the built-in one) with a backend (None: the default backend)."""
    from dupfind.model import resolve_model

    ref = resolve_model(model)
    backend = backend or DEFAULT_BACKEND
    if backend == "torch":
        from dupfind.backends.torch_backend import TorchEncoder

        return TorchEncoder(ref)
    if backend == "onnx":
        from dupfind.backends.onnx_backend import OnnxEncoder

        return OnnxEncoder(ref)
    if backend == "openvino":
        from dupfind.backends.openvino_backend import OpenVinoEncoder

        return OpenVinoEncoder(ref)
    raise DupfindError(f"unknown backend '{backend}' (choose from {', '.join(BACKENDS)})")
