"""Run the real `dupfind` entry point with the fake encoder: `python -m tests.fake_cli mine ...`.

For subprocess tests (signals, pipes, /dev/full) that cannot monkeypatch. `FAKE_ENCODER_DELAY`
(seconds per batch) slows encoding down so a test can interrupt it; `FAKE_ENCODER_STARTED`, a path,
is created when the first batch is encoded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from dupfind.cli import main
from dupfind.vectors.backends import register_backend
from dupfind.vectors.encoding import Embeddings
from tests.conftest import FakeEncoder, FakePairScorer


class SlowFakeEncoder(FakeEncoder):
    def encode_batch(self, texts: Sequence[str]) -> Embeddings:
        started = os.environ.get("FAKE_ENCODER_STARTED")
        if started:
            open(started, "a").close()
        time.sleep(float(os.environ.get("FAKE_ENCODER_DELAY", "0")))
        return super().encode_batch(texts)


if __name__ == "__main__":
    register_backend("fake", lambda model: SlowFakeEncoder(), pair_scorer=lambda model: FakePairScorer())
    os.environ["DUPFIND_BACKEND"] = "fake"
    main()
