from __future__ import annotations

import numpy as np
import pytest

from dupfind.errors import DupfindError
from dupfind.vectors.encoding import count_truncated, encode, token_counts
from tests.conftest import FakeEncoder

# Character length and token count disagree: long words make few tokens for the fake encoder.
TEXTS = [
    "a b c d e f g h",
    "extraordinarily",
    "a b",
    "internationalisation considerations",
    "one two three four five",
    "x",
    "p q r s t u v w x y z",
]


def test_batches_group_texts_of_equal_token_counts_and_results_keep_input_order(fake_encoder: FakeEncoder) -> None:
    embeddings = encode(fake_encoder, TEXTS, batch_size=2)
    batch_tokens = [fake_encoder.count_tokens(batch) for batch in fake_encoder.calls]
    assert [max(tokens) for tokens in batch_tokens] == sorted((max(tokens) for tokens in batch_tokens), reverse=True)
    assert batch_tokens[0] == [13, 10]  # the two longest in tokens, though not in characters
    expected = np.stack([encode(FakeEncoder(), [text])[0] for text in TEXTS])
    np.testing.assert_allclose(embeddings, expected, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-6)


def test_a_single_batch_is_not_tokenised_twice(monkeypatch: pytest.MonkeyPatch, fake_encoder: FakeEncoder) -> None:
    monkeypatch.setattr(fake_encoder, "count_tokens", lambda texts: pytest.fail("counted tokens"))
    assert encode(fake_encoder, TEXTS[:3], batch_size=3).shape == (3, FakeEncoder.dim)


def test_known_token_counts_are_not_counted_again(monkeypatch: pytest.MonkeyPatch, fake_encoder: FakeEncoder) -> None:
    tokens = token_counts(fake_encoder, TEXTS)
    monkeypatch.setattr(fake_encoder, "count_tokens", lambda texts: pytest.fail("counted tokens"))
    embeddings = encode(fake_encoder, TEXTS, batch_size=2, tokens=tokens)
    assert [len(batch) for batch in fake_encoder.calls] == [2, 2, 2, 1]
    assert fake_encoder.calls[0] == ["p q r s t u v w x y z", "a b c d e f g h"]  # the known counts set the order
    np.testing.assert_allclose(embeddings, encode(FakeEncoder(), TEXTS, batch_size=2), atol=1e-6)


def test_progress_counts_every_text(fake_encoder: FakeEncoder) -> None:
    seen: list[tuple[int, int]] = []
    encode(fake_encoder, TEXTS, batch_size=3, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(3, 7), (3, 7), (1, 7)]


def test_empty_input_and_bad_batch_size(fake_encoder: FakeEncoder) -> None:
    assert encode(fake_encoder, []).shape == (0, 0)
    with pytest.raises(DupfindError, match="batch size"):
        encode(fake_encoder, TEXTS, batch_size=0)


def test_token_counts_chunk_by_chunk(fake_encoder: FakeEncoder) -> None:
    assert token_counts(fake_encoder, TEXTS, chunk=3).tolist() == fake_encoder.count_tokens(TEXTS)
    assert count_truncated(fake_encoder, token_counts(fake_encoder, TEXTS)) == 0
    long = [" ".join(["word"] * FakeEncoder.max_seq_length), "short"]
    assert count_truncated(fake_encoder, token_counts(fake_encoder, long)) == 1
