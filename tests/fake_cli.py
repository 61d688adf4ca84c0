"""Run the real `dupfind` entry point with the fake encoder: `python -m tests.fake_cli mine ...`.

For subprocess tests (signals, pipes, /dev/full) that cannot monkeypatch. `FAKE_ENCODER_DELAY`
(seconds per batch) slows encoding down so a test can interrupt it; `FAKE_ENCODER_STARTED`, a path,
is created when the first batch is encoded. With `--engine ray`, the Ray that dupfind starts gives every
worker the fake backends too (`tests.ray_workers`), the slow one as `fake`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any

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


def give_ray_workers_the_fake_backends() -> None:
    """Make the Ray that dupfind starts run `tests.fake_cli.set_up_worker` in every worker process."""
    import ray

    from tests.ray_workers import RUNTIME_ENV

    init = ray.init

    def init_with_fake_workers(*args: Any, **kwargs: Any) -> Any:
        return init(
            *args, runtime_env={**RUNTIME_ENV, "worker_process_setup_hook": "tests.fake_cli.set_up_worker"}, **kwargs
        )

    ray.init = init_with_fake_workers


def set_up_worker() -> None:
    """A Ray worker's setup: the fake backends of `tests.ray_workers`, the slow encoder as `fake`."""
    from tests.ray_workers import set_up_worker as set_up_fake_worker

    set_up_fake_worker()
    register_backend("fake", lambda model: SlowFakeEncoder())


if __name__ == "__main__":
    register_backend("fake", lambda model: SlowFakeEncoder(), pair_scorer=lambda model: FakePairScorer())
    os.environ["DUPFIND_BACKEND"] = "fake"
    if "--engine" in sys.argv:
        give_ray_workers_the_fake_backends()
    main()
