"""The embedding cache: hits and misses, only new texts encoded, concurrent writers, killed runs, merging."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from dupfind.embedding_cache import MAX_SHARDS, EmbeddingCache, cached_encode, text_keys
from dupfind.encoding import encode, normalize
from tests.conftest import FakeEncoder

TEXTS = [f"How do I fix problem number {i}?" for i in range(50)]


@pytest.fixture
def cache(tmp_path: Path) -> EmbeddingCache:
    return EmbeddingCache(tmp_path / "embeddings")


def vectors(count: int, seed: int = 0) -> np.ndarray:
    return normalize(np.random.default_rng(seed).normal(size=(count, 8)))


def test_keys_are_exact_text_digests() -> None:
    keys = text_keys(["a", "a ", "A", "a"])
    assert keys.shape == (4, 2) and keys.dtype == np.uint64
    assert len({tuple(row) for row in keys.tolist()}) == 3


def test_lookup_returns_what_was_stored(cache: EmbeddingCache) -> None:
    keys, stored = text_keys(TEXTS), vectors(len(TEXTS))
    cache.store("model-a", keys[:30], stored[:30])
    out, found = cache.lookup("model-a", keys[::-1])
    assert found.tolist() == [False] * 20 + [True] * 30
    assert out is not None and np.array_equal(out[20:], stored[:30][::-1])
    assert cache.lookup("model-b", keys)[0] is None


def test_cached_encode_encodes_only_new_texts(cache: EmbeddingCache, fake_encoder: FakeEncoder) -> None:
    first = cached_encode(fake_encoder, TEXTS[:40], batch_size=16, cache=cache)
    fake_encoder.calls.clear()
    again = cached_encode(fake_encoder, TEXTS, batch_size=16, cache=cache)
    assert sorted(text for batch in fake_encoder.calls for text in batch) == sorted(TEXTS[40:])
    assert np.array_equal(again[:40], first)
    assert np.array_equal(again, encode(fake_encoder, TEXTS))
    fake_encoder.calls.clear()
    cached_encode(fake_encoder, TEXTS, cache=cache)
    assert fake_encoder.calls == []


def test_no_cache_encodes_everything(fake_encoder: FakeEncoder) -> None:
    cached_encode(fake_encoder, TEXTS, cache=None)
    assert sum(map(len, fake_encoder.calls)) == len(TEXTS)


def test_default_location_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DUPFIND_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert EmbeddingCache().root == tmp_path / "elsewhere" / "embeddings"


def test_remains_of_a_killed_run_are_ignored(cache: EmbeddingCache) -> None:
    keys, stored = text_keys(TEXTS), vectors(len(TEXTS))
    cache.store("m", keys[:10], stored[:10])
    folder = cache.folder("m")
    (folder / ".half.vectors.npy.1234.tmp").write_bytes(b"\x93NUMPY partial")
    np.save(folder / "orphan.vectors.npy", stored[10:20])  # killed before its keys were written
    (folder / "broken.keys.npy").write_bytes(b"not an npy file")
    out, found = cache.lookup("m", keys)
    assert found.sum() == 10 and out is not None and np.array_equal(out[:10], stored[:10])


def test_concurrent_writers_and_readers(cache: EmbeddingCache) -> None:
    keys, stored = text_keys(TEXTS), vectors(len(TEXTS))

    def write(part: int) -> None:
        rows = slice(part % 10 * 5, part % 10 * 5 + 5)
        cache.store("m", keys[rows], stored[rows])
        out, found = cache.lookup("m", keys)  # may miss shards that a concurrent merge just replaced
        assert out is None or np.array_equal(out[found], stored[found])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(3 * MAX_SHARDS)))
    out, found = cache.lookup("m", keys)
    assert found.all() and out is not None and np.array_equal(out, stored)
    assert len(list(cache.folder("m").glob("*.keys.npy"))) <= MAX_SHARDS + 4


def test_many_shards_are_merged_without_duplicates(cache: EmbeddingCache) -> None:
    keys, stored = text_keys(TEXTS), vectors(len(TEXTS))
    for shard in range(MAX_SHARDS + 1):
        cache.store("m", keys[shard : shard + 3], stored[shard : shard + 3])
    [usage] = cache.usage()
    assert usage.shards == 1 and usage.rows == MAX_SHARDS + 3
    out, found = cache.lookup("m", keys[: MAX_SHARDS + 3])
    assert found.all() and out is not None and np.array_equal(out, stored[: MAX_SHARDS + 3])


def test_usage_and_clear(cache: EmbeddingCache) -> None:
    assert cache.usage() == []
    cache.store("model-a", text_keys(TEXTS[:5]), vectors(5))
    cache.store("model-b", text_keys(TEXTS), vectors(len(TEXTS)))
    usage = {model.fingerprint: model for model in cache.usage()}
    assert usage["model-a"].rows == 5 and usage["model-b"].rows == len(TEXTS)
    assert usage["model-b"].size > len(TEXTS) * 8 * 4
    assert [model.fingerprint for model in cache.clear(["model-a"])] == ["model-a"]
    assert [model.fingerprint for model in cache.usage()] == ["model-b"]
    cache.clear()
    assert cache.usage() == []
