"""Encoders and faults for Ray workers in tests: `set_up_worker` is the `worker_process_setup_hook` of the test
clusters, so that every worker process knows the `fake` backend (and `fake-dies-once`) as the test process does.

`fake-dies-once` encodes like `fake` but kills its worker process on its first batch when the file
`$DUPFIND_CACHE_DIR/die-once` exists (it is removed first, so only one worker dies): Ray must restart the
actor and run the batch again, losing and duplicating nothing. Its pair scorer dies likewise on the file
`$DUPFIND_CACHE_DIR/die-once-rerank`. `fake-elsewhere` cannot be loaded on a
worker (as a model missing on a node), while a test registers it in its own process.

A mining task's worker process dies likewise when the file `$DUPFIND_CACHE_DIR/die-once-scoring` exists: Ray
must run the task again, and the pairs must be those of a clean run. While `$DUPFIND_CACHE_DIR/scoring-raises`
exists, every mining task raises the error it names (`OSError`: a full disk, `ValueError`: a bug), and
`fake-unreadable` is an encoder whose files a worker cannot read (`PermissionError`).

A node started with `$DUPFIND_TEST_CPU_FLAGS` (the path of a file of CPU flags, `tests/ray/test_ray_cluster.py`) has
those flags instead of its CPU's, read at each call (a test rewrites the file to change them), and loads every
encoder as the fake one with its backend and precision in the fingerprint (`load_fake_encoder`).

`fsspec.implementations.http` imports as a module without `HTTPFileSystem` in every worker (and in the test
process, `tests/ray/conftest.py`): what Ray Data's file-system probing meets, at random, on an install without
`aiohttp` when several threads import it at once. Nothing of `--engine ray` may get there.
"""

from __future__ import annotations

import errno
import os
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.pairs.mining import Hits
from dupfind.vectors import backends
from dupfind.vectors.backends import register_backend
from dupfind.vectors.encoding import Embeddings, Encoder
from dupfind.vectors.precision import Choice
from tests.conftest import FakeEncoder, FakePairScorer


def die_once_marker() -> Path:
    return Path(os.environ["DUPFIND_CACHE_DIR"]) / "die-once"


class DiesOnceEncoder(FakeEncoder):
    def encode_batch(self, texts: Sequence[str]) -> Embeddings:
        marker = die_once_marker()
        try:
            os.rename(marker, marker.with_name("died"))  # only one process claims it
        except FileNotFoundError:
            return super().encode_batch(texts)
        os._exit(1)


class DiesOncePairScorer(FakePairScorer):
    def score_batch(self, first: Sequence[str], second: Sequence[str]) -> NDArray[np.float32]:
        marker = die_once_marker().with_name("die-once-rerank")
        try:
            os.rename(marker, marker.with_name("died-rerank"))  # only one process claims it
        except FileNotFoundError:
            return super().score_batch(first, second)
        os._exit(1)


ROOT = Path(__file__).resolve().parents[1]
# What the test clusters give every worker: the hook, and the repository on the path so that the hook's module
# (`tests.ray_workers`) imports there as it does in the test process (pytest puts it on the driver's path only).
RUNTIME_ENV = {
    "worker_process_setup_hook": "tests.ray_workers.set_up_worker",
    "env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))},
}


class PrecisionEncoder(FakeEncoder):
    """The fake encoder, fingerprinted by the backend and precision it was loaded at."""

    def __init__(self, choice: Choice) -> None:
        super().__init__()
        self.fingerprint = f"fake-{choice.backend}-{choice.precision}"


def load_fake_encoder(
    model: str | None = None, backend: str | None = None, precision: str = "auto", device: str = "auto"
) -> Encoder:
    """What `load_encoder` loads where every backend is the fake encoder: at the choice `resolve_choice` makes."""
    return PrecisionEncoder(backends.resolve_choice(backend, precision, device))


def injected_cpu_features() -> frozenset[str]:
    """The flags in the file `$DUPFIND_TEST_CPU_FLAGS` names."""
    return frozenset(Path(os.environ[CPU_FLAGS]).read_text(encoding="utf-8").split())


CPU_FLAGS = "DUPFIND_TEST_CPU_FLAGS"


def cannot_load(model: object) -> FakeEncoder:
    raise DupfindError("model 'fake-elsewhere' is not installed on this node")


def unreadable(model: object) -> FakeEncoder:
    raise PermissionError(errno.EACCES, "Permission denied", "/models/unreadable/model.safetensors")


SCORING_ERRORS = {
    "OSError": OSError(errno.ENOSPC, "No space left on device", "/spill/cells.npy"),
    "ValueError": ValueError("a mining task's bug\nits second line"),
}


def scoring_dies_once(score_cell: Callable[..., Hits]) -> Callable[..., Hits]:
    """`score_cell`, but the first call after the marker file appears kills its worker process, and every call
    raises while the `scoring-raises` marker exists."""

    def score_or_die(*args: Any, **kwargs: Any) -> Hits:
        marker = die_once_marker().with_name("die-once-scoring")
        raises = marker.with_name("scoring-raises")
        if raises.exists():
            raise SCORING_ERRORS[raises.read_text()]
        try:
            os.rename(marker, marker.with_name("died-scoring"))  # only one process claims it
        except FileNotFoundError:
            return score_cell(*args, **kwargs)
        os._exit(1)

    return score_or_die


FSSPEC_HTTP = "fsspec.implementations.http"


def without_http_filesystem() -> types.ModuleType:
    """What `sys.modules` holds for fsspec's HTTP module in the tests: a module without `HTTPFileSystem`, so that
    `from fsspec.implementations.http import HTTPFileSystem` fails with the ImportError of a fresh install."""
    return types.ModuleType(FSSPEC_HTTP)


def set_up_worker() -> None:
    """Register the fake backends, let a mining task die or raise on demand, and make fsspec's HTTP module
    unusable."""
    import sys

    sys.modules[FSSPEC_HTTP] = without_http_filesystem()
    from dupfind.ray import mine as ray_mine

    register_backend("fake", lambda model: FakeEncoder(), pair_scorer=lambda model: FakePairScorer())
    register_backend("fake-dies-once", lambda model: DiesOnceEncoder(), pair_scorer=lambda model: DiesOncePairScorer())
    register_backend("fake-elsewhere", cannot_load)
    register_backend("fake-unreadable", unreadable)
    ray_mine.score_cell = scoring_dies_once(ray_mine.score_cell)
    if CPU_FLAGS in os.environ:
        backends.cpu_features = injected_cpu_features
        backends.load_encoder = load_fake_encoder
