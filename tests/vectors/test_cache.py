"""The embedding cache: hits and misses, only new texts encoded, concurrent writers, killed runs, merging."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from dupfind.vectors import cache as cache_module
from dupfind.vectors.cache import MAX_SHARDS, EmbeddingCache, text_keys
from dupfind.vectors.embedder import Embedder
from dupfind.vectors.encoding import normalize
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


def test_shards_are_read_merged_and_checked_a_block_of_rows_at_a_time(
    cache: EmbeddingCache, monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder
) -> None:
    """Blocks of 4 rows: every row read, merged and checked across block boundaries, in any order asked."""
    monkeypatch.setattr(cache_module, "_COPY_ROWS", 4)
    keys, stored = text_keys(TEXTS), vectors(len(TEXTS))
    for shard in range(MAX_SHARDS + 1):  # overlapping shards of 11 rows: one merge, duplicates dropped
        cache.store("m", keys[2 * shard : 2 * shard + 11], stored[2 * shard : 2 * shard + 11])
    [usage] = cache.usage()
    assert usage.shards == 1 and usage.rows == 2 * MAX_SHARDS + 11
    order = np.random.default_rng(1).permutation(len(TEXTS))
    out, found = cache.lookup("m", keys[order])
    assert found.tolist() == (order < usage.rows).tolist()
    assert out is not None and np.array_equal(out[found], stored[order[found]])
    assert not recwarn.list  # the merged shard's checksum, written a block at a time, is the one read back


def test_ordered_blocks_are_the_rows_of_the_keys_in_order_across_shards(
    cache: EmbeddingCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks of 4 rows, gathered from three shards, the keys in any order; a key not stored is refused."""
    monkeypatch.setattr(cache_module, "_COPY_ROWS", 4)
    keys, stored = text_keys(TEXTS), vectors(len(TEXTS))
    for start in (0, 20, 35):
        cache.store("m", keys[start : start + 20], stored[start : start + 20], compact=False)
    order = np.random.default_rng(2).permutation(len(TEXTS))
    blocks = list(cache.ordered_blocks("m", keys[order]))
    assert [len(block) for block in blocks] == [4] * 12 + [2]
    assert np.array_equal(np.concatenate(blocks), stored[order])
    assert cache.found("m", keys[order]).all() and not cache.found("other", keys).any()
    missing = text_keys(["not stored"])
    with pytest.raises(KeyError, match="1 keys are not in"):
        next(cache.ordered_blocks("m", np.concatenate([keys, missing])))


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


def only_shard(cache: EmbeddingCache, fingerprint: str) -> tuple[Path, Path]:
    [keys_file] = cache.folder(fingerprint).glob("*.keys.npy")
    return keys_file, keys_file.with_name(keys_file.name.replace(".keys.npy", ".vectors.npy"))


def damage_scaled(keys_file: Path, vectors_file: Path) -> None:
    np.save(vectors_file, np.load(vectors_file) * 1000)


def damage_nan(keys_file: Path, vectors_file: Path) -> None:
    stored = np.load(vectors_file)
    stored[3] = np.nan
    np.save(vectors_file, stored)


def damage_swapped_rows(keys_file: Path, vectors_file: Path) -> None:
    np.save(vectors_file, np.load(vectors_file)[::-1].copy())  # still unit vectors: only the checksum tells


def damage_empty_keys(keys_file: Path, vectors_file: Path) -> None:
    keys_file.write_bytes(b"")


def damage_empty_vectors(keys_file: Path, vectors_file: Path) -> None:
    vectors_file.write_bytes(b"")


def damage_wrong_dimension(keys_file: Path, vectors_file: Path) -> None:
    np.save(vectors_file, np.load(vectors_file)[:, :4].copy())


def damage_object_dtype(keys_file: Path, vectors_file: Path) -> None:
    np.save(vectors_file, np.array([list(row) for row in np.load(vectors_file)], dtype=object), allow_pickle=True)


def damage_truncated(keys_file: Path, vectors_file: Path) -> None:
    vectors_file.write_bytes(vectors_file.read_bytes()[: vectors_file.stat().st_size // 2])


def damage_a_row_missing(keys_file: Path, vectors_file: Path) -> None:
    np.save(vectors_file, np.load(vectors_file)[:-1].copy())


def damage_scaled_checksum_kept(keys_file: Path, vectors_file: Path) -> None:
    """Scaled rows under a checksum that matches them (a shard written by a faulty writer): only validation tells."""
    stored = np.load(vectors_file) * 1000
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.ascontiguousarray(stored).data)
    digest.update(np.ascontiguousarray(np.load(keys_file)).data)
    name, _, suffix = keys_file.name.split(".", 2)
    np.save(vectors_file, stored)
    vectors_file.rename(vectors_file.with_name(f"{name}.{digest.hexdigest()}.vectors.npy"))
    keys_file.rename(keys_file.with_name(f"{name}.{digest.hexdigest()}.{suffix}"))


DAMAGES = [
    damage_scaled,
    damage_nan,
    damage_swapped_rows,
    damage_empty_keys,
    damage_empty_vectors,
    damage_wrong_dimension,
    damage_object_dtype,
    damage_truncated,
    damage_a_row_missing,
    damage_scaled_checksum_kept,
]


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_shard_is_dropped_with_one_warning_and_encoded_again(
    cache: EmbeddingCache, fake_encoder: FakeEncoder, damage: object
) -> None:
    expected = Embedder(fake_encoder, cache).embed(TEXTS)
    damage(*only_shard(cache, fake_encoder.fingerprint))  # type: ignore[operator]
    keys_file, vectors_file = only_shard(cache, fake_encoder.fingerprint)
    fake_encoder.calls.clear()
    with pytest.warns(UserWarning) as caught:
        again = Embedder(fake_encoder, cache).embed(TEXTS)
    assert np.array_equal(again, expected)
    assert sum(map(len, fake_encoder.calls)) == len(TEXTS)
    [warning] = caught
    message = str(warning.message)
    assert keys_file.name in message and "damaged" in message and "\n" not in message
    assert not keys_file.exists() and not vectors_file.exists()
    fake_encoder.calls.clear()
    assert np.array_equal(Embedder(fake_encoder, cache).embed(TEXTS), expected)
    assert fake_encoder.calls == []  # the fresh shard is sound


@pytest.mark.parametrize("damage", [damage_empty_keys, damage_empty_vectors])
def test_usage_and_clear_survive_an_empty_shard(cache: EmbeddingCache, damage: object) -> None:
    cache.store("m", text_keys(TEXTS), vectors(len(TEXTS)))
    damage(*only_shard(cache, "m"))  # type: ignore[operator]
    [usage] = cache.usage()
    assert usage.fingerprint == "m"
    assert [removed.fingerprint for removed in cache.clear()] == ["m"]
    assert cache.usage() == []


def test_rows_that_are_not_unit_vectors_are_not_stored(cache: EmbeddingCache) -> None:
    keys, stored = text_keys(TEXTS[:4]), vectors(4)
    stored[1] = np.nan
    stored[2] *= 3
    cache.store("m", keys, stored)
    out, found = cache.lookup("m", keys)
    assert found.tolist() == [True, False, False, True]
    assert out is not None and np.array_equal(out[[0, 3]], stored[[0, 3]])


def test_merging_drops_damaged_shards(cache: EmbeddingCache) -> None:
    keys, stored = text_keys(TEXTS), vectors(len(TEXTS))
    cache.store("m", keys[:2], stored[:2])
    damage_scaled(*only_shard(cache, "m"))
    with pytest.warns(UserWarning, match="damaged shard"):
        for shard in range(1, MAX_SHARDS + 1):
            cache.store("m", keys[2 * shard : 2 * shard + 2], stored[2 * shard : 2 * shard + 2])
    [usage] = cache.usage()
    assert usage.shards == 1 and usage.rows == 2 * MAX_SHARDS
    out, found = cache.lookup("m", keys)
    assert found.tolist() == [False] * 2 + [True] * 2 * MAX_SHARDS + [False] * (len(TEXTS) - 2 * MAX_SHARDS - 2)
    assert out is not None and np.array_equal(out[found], stored[found])


def test_shard_files_are_flushed_before_they_are_renamed(
    cache: EmbeddingCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(f"replace {Path(b).name}"), real_replace(a, b))[1])
    cache.store("m", text_keys(TEXTS), vectors(len(TEXTS)))
    renames = [index for index, event in enumerate(events) if event.startswith("replace")]
    assert len(renames) == 2 and all(events[index - 1] == "fsync" for index in renames)
