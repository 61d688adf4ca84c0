"""The Embedder: each distinct text encoded once, the cache read and filled, token counts passed through."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dupfind.errors import DupfindError
from dupfind.vectors.cache import EmbeddingCache
from dupfind.vectors.embedder import Embedder
from dupfind.vectors.encoding import encode
from tests.conftest import FakeEncoder

TEXTS = [f"how do I cook dish number {i} at home" for i in range(100)]


def encoded(encoder: FakeEncoder) -> list[str]:
    return [text for batch in encoder.calls for text in batch]


@pytest.fixture
def cache(tmp_path: Path) -> EmbeddingCache:
    return EmbeddingCache(tmp_path / "cache")


def test_encodes_only_what_the_cache_lacks(cache: EmbeddingCache, fake_encoder: FakeEncoder) -> None:
    first = Embedder(fake_encoder, cache, batch_size=16).embed(TEXTS[:40])
    fake_encoder.calls.clear()
    again = Embedder(fake_encoder, cache, batch_size=16).embed(TEXTS)
    assert sorted(encoded(fake_encoder)) == sorted(TEXTS[40:])
    assert np.array_equal(again[:40], first)
    assert np.array_equal(again, encode(fake_encoder, TEXTS))
    fake_encoder.calls.clear()
    Embedder(fake_encoder, cache).embed(TEXTS)
    assert fake_encoder.calls == []


def test_without_a_cache_encodes_each_distinct_text_once(fake_encoder: FakeEncoder) -> None:
    texts = ["a b", "c d", "a b", "A B"]
    embeddings = Embedder(fake_encoder).embed(texts)
    assert sorted(encoded(fake_encoder)) == ["A B", "a b", "c d"]  # only exact repeats are merged
    assert np.array_equal(embeddings[0], embeddings[2]) and len(embeddings) == 4


def test_known_token_counts_are_not_counted_again(fake_encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = Embedder(fake_encoder, batch_size=4)
    tokens = embedder.count_tokens(TEXTS + TEXTS[:3])
    monkeypatch.setattr(fake_encoder, "count_tokens", lambda texts: pytest.fail("counted tokens again"))
    assert embedder.embed(TEXTS + TEXTS[:3], tokens).shape == (103, fake_encoder.dim)


def test_progress_counts_every_encoded_text(fake_encoder: FakeEncoder) -> None:
    done: list[int] = []
    Embedder(fake_encoder, batch_size=8).with_progress(lambda step, total: done.append(step)).embed(TEXTS)
    assert sum(done) == len(TEXTS)


def test_similarity_and_bad_batch_size(fake_encoder: FakeEncoder) -> None:
    embedder = Embedder(fake_encoder)
    assert embedder.similarity("red apple pie", "red apple pie") == pytest.approx(1.0, abs=1e-6)
    assert embedder.similarity("red apple pie", "stock market news") < 0.5
    with pytest.raises(DupfindError, match="batch size"):
        Embedder(fake_encoder, batch_size=0)
    with pytest.raises(DupfindError, match="batch size"):
        Embedder(fake_encoder, batch_size=100_000)


def test_an_unwritable_cache_warns_and_still_embeds(fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.warns(UserWarning, match="embedding cache not written"):
        embeddings = Embedder(fake_encoder, EmbeddingCache(blocker / "cache")).embed(TEXTS[:5])
    assert embeddings.shape == (5, fake_encoder.dim)
