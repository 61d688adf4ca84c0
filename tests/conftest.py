"""Shared fixtures: a fast, deterministic fake encoder, and the real model for tests marked slow."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from dupfind.vectors.backends import register_backend, unregister_backend
from dupfind.vectors.encoding import Embeddings

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
QUORA = SHARED / "data" / "quora"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C delivered to the processes the tests start, which the tests that interrupt a run need: a suite started
    in the background by a shell without job control (`nohup make test &`) inherits SIGINT ignored, and so would
    every process it starts (an ignored signal stays ignored across exec; a handled one is reset)."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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


class FakePairScorer:
    """A re-ranker that reads word order: 1.0 for the same words in the same order, else half their overlap
    (so a word-order swap scores at most 0.5). Records the pairs it scores."""

    fingerprint = "fake-pair-scorer"

    def __init__(self) -> None:
        self.calls: list[list[tuple[str, str]]] = []

    def score_batch(self, first: Sequence[str], second: Sequence[str]) -> NDArray[np.float32]:
        self.calls.append(list(zip(first, second, strict=True)))
        return np.array([self._score(a, b) for a, b in zip(first, second, strict=True)], dtype=np.float32)

    def count_tokens(self, first: Sequence[str], second: Sequence[str]) -> list[int]:
        return [len(FakeEncoder._words(a)) + len(FakeEncoder._words(b)) + 3 for a, b in zip(first, second, strict=True)]

    @staticmethod
    def _score(a: str, b: str) -> float:
        words_a, words_b = FakeEncoder._words(a), FakeEncoder._words(b)
        if words_a == words_b:
            return 1.0
        union = set(words_a) | set(words_b)
        return 0.5 * len(set(words_a) & set(words_b)) / max(len(union), 1)


FAKE_RERANK_SETTINGS = {
    "pair": 0.75,
    "mining": 0.75,
    "candidates": {},
    "margin": {"pair": 0.2, "mining": 0.2},
}


def write_fake_reranker(folder: Path, settings: dict[str, object] = FAKE_RERANK_SETTINGS) -> Path:
    """A re-ranker folder for the fake pair scorer (a config and the re-rank settings, no weights), or the re-rank
    settings added to a folder that holds a model."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "config.json").exists():
        (folder / "config.json").write_text("{}", encoding="utf-8")
    (folder / "dupfind.json").write_text(json.dumps({"rerank": settings}), encoding="utf-8")
    return folder


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the tests' embedding cache and exported models out of the user's cache directory."""
    os.environ["DUPFIND_CACHE_DIR"] = str(tmp_path_factory.mktemp("dupfind-cache"))


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def use_fake_encoder(monkeypatch: pytest.MonkeyPatch, fake_encoder: FakeEncoder) -> Iterator[FakeEncoder]:
    """Register the fake encoder (and the fake pair scorer, for `--rerank`) as the `fake` backend and make it the
    default backend (library and CLI)."""
    register_backend("fake", lambda model: fake_encoder, pair_scorer=lambda model: FakePairScorer())
    monkeypatch.setenv("DUPFIND_BACKEND", "fake")
    yield fake_encoder
    unregister_backend("fake")


@pytest.fixture
def fake_pair_scorer() -> FakePairScorer:
    return FakePairScorer()


@pytest.fixture
def use_fake_reranker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_encoder: FakeEncoder, fake_pair_scorer: FakePairScorer
) -> Iterator[Path]:
    """The fake encoder and pair scorer as the default `fake` backend; yields a fake re-ranker's folder."""
    register_backend("fake", lambda model: fake_encoder, pair_scorer=lambda model: fake_pair_scorer)
    monkeypatch.setenv("DUPFIND_BACKEND", "fake")
    yield write_fake_reranker(tmp_path / "fake-reranker")
    unregister_backend("fake")


@pytest.fixture(scope="session")
def real_encoder():  # type: ignore[no-untyped-def]
    """The built-in model on the CPU backend in fp32 (slow tests only)."""
    from dupfind.vectors.backends import load_encoder

    return load_encoder(backend="openvino", precision="fp32")


def needs_quora() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not QUORA.is_dir(), reason="../shared/data/quora is not here")
