"""Shared fixtures: a fast, deterministic fake encoder, and the real model for tests marked slow."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from dupfind.backends import register_backend, unregister_backend
from dupfind.encoding import Embeddings

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
QUORA = SHARED / "data" / "quora"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


class FakeEncoder:
    """Bag of hashed words: texts that share most words get a high cosine. Deterministic, no model."""

    fingerprint = "fake-bag-of-words"
    max_seq_length = 32
    dim = 256

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode_batch(self, texts: Sequence[str]) -> Embeddings:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in self._words(text):
                digest = hashlib.md5(word.encode()).digest()
                out[row, digest[0]] += 1.0 if digest[2] % 2 else -1.0
        return out + 1e-3

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(self._words(text)) + 2 for text in texts]

    @staticmethod
    def _words(text: str) -> list[str]:
        return re.findall(r"\w+", text.casefold())


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the tests' embedding cache and exported models out of the user's cache directory."""
    os.environ["DUPFIND_CACHE_DIR"] = str(tmp_path_factory.mktemp("dupfind-cache"))


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def use_fake_encoder(monkeypatch: pytest.MonkeyPatch, fake_encoder: FakeEncoder) -> Iterator[FakeEncoder]:
    """Register the fake encoder as the `fake` backend and make it the default backend (library and CLI)."""
    register_backend("fake", lambda model: fake_encoder)
    monkeypatch.setenv("DUPFIND_BACKEND", "fake")
    yield fake_encoder
    unregister_backend("fake")


@pytest.fixture(scope="session")
def real_encoder():  # type: ignore[no-untyped-def]
    """The built-in model on the default backend (slow tests only)."""
    from dupfind.backends import load_encoder

    return load_encoder(backend="openvino")


def needs_quora() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not QUORA.is_dir(), reason="../shared/data/quora is not here")
