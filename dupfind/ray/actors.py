"""The actor pools of `--engine ray`: what each actor loads once (`ModelSpec`), how many actors (`Workers`), and
`complete_work_store`, which computes on the pool the rows that a work folder's store does not hold yet.

Encoding (`dupfind.ray.encode`) and re-ranking (`dupfind.ray.rerank`) share it: each actor stores each block it
computes as one shard of the store (atomically; a retried block at worst stores a shard twice, and rows are
matched by key, so nothing counts twice); only the driver merges shards, before and after the actors run, so
that no two processes of a run merge at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.ray.session import RETRIES, worker_errors
from dupfind.vectors.backends import DEFAULT_PRECISION
from dupfind.vectors.cache import EmbeddingCache, Keys
from dupfind.vectors.encoding import DEFAULT_BATCH_SIZE, Progress

BLOCK_ROWS = 4096  # rows an actor computes, and stores as one shard, at a time


@dataclass(frozen=True)
class ModelSpec:
    """How a worker loads a model (the encoder, or the re-ranker's pair scorer): the model's name or path (None:
    built-in), the backend's name, the precision and the device (`cpu`, or `cuda` for actors given GPUs), and the
    fingerprint it must have (a node with another model on that path is an error, not mixed results)."""

    model: str | None
    backend: str
    fingerprint: str
    batch_size: int = DEFAULT_BATCH_SIZE
    precision: str = DEFAULT_PRECISION
    device: str = "cpu"

    @classmethod
    def of(
        cls,
        model: str | None,
        backend: str,
        fingerprint: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        precision: str = DEFAULT_PRECISION,
        device: str = "cpu",
    ) -> ModelSpec:
        """The spec of a model given as on the command line: a local folder is named by its absolute path."""
        if model is not None and Path(model).exists():
            model = str(Path(model).resolve())
        return cls(model, backend, fingerprint, batch_size, precision, device)

    def check_loaded(self, fingerprint: str, what: str) -> None:
        """Refuse a model loaded on this node whose fingerprint is not the driver's."""
        import os

        if fingerprint != self.fingerprint:
            raise DupfindError(
                f"the {what} on node {os.uname().nodename} is {fingerprint}, "
                f"not {self.fingerprint} as on the driver: install the same model on every node"
            )


@dataclass(frozen=True)
class Workers:
    """How many actors, and the CPUs and GPUs of each (None: one actor per node, with its CPUs)."""

    actors: int | None = None
    cpus: float | None = None
    gpus: float = 0.0


def complete_work_store(
    store: EmbeddingCache,
    fingerprint: str,
    keys: Keys,
    compute: Callable[[NDArray[np.intp]], None],
    noun: str,
) -> int:
    """Make `store` hold a row of every key under `fingerprint`: those missing are computed by `compute(rows)`, which
    must store them there; returns how many were computed now. Reads no row."""
    store.compact(fingerprint)
    missing = np.flatnonzero(~store.found(fingerprint, keys))
    if len(missing):
        compute(missing)
        store.compact(fingerprint)
        stored = store.found(fingerprint, keys[missing])
        if not stored.all():
            raise DupfindError(
                f"{int((~stored).sum())} {noun} were not found in {store.folder(fingerprint)}: "
                "is --work-dir on a file system that every node of the cluster sees?"
            )
    return len(missing)


def fill_work_store(
    store: EmbeddingCache,
    fingerprint: str,
    keys: Keys,
    compute: Callable[[NDArray[np.intp]], None],
    noun: str,
) -> tuple[NDArray[np.float32] | None, int]:
    """The stored rows of `keys` (None when there are none), those missing first computed as `complete_work_store`
    does; and how many were computed now."""
    computed = complete_work_store(store, fingerprint, keys, compute, noun)
    return store.lookup(fingerprint, keys)[0], computed


def run_on_actors(
    columns: dict[str, Any],
    actor: Callable[[ModelSpec, str], Any],
    spec: ModelSpec,
    root: Path,
    workers: Workers,
    progress: Progress | None,
    total: int,
) -> None:
    """Run `actor(spec, root)` (a class loading `spec`'s model and storing into the store at `root`) over the Arrow
    `columns` in blocks of `BLOCK_ROWS` rows on the actor pool; each call returns `{"rows": [rows done]}`, counted by
    `progress`."""
    import pyarrow as pa
    import ray.data

    table = pa.table(columns)
    # One block per shard, made here: no task runs beside the actors, which may hold every CPU.
    dataset = ray.data.from_arrow([table.slice(start, BLOCK_ROWS) for start in range(0, len(table), BLOCK_ROWS)])
    actors, cpus = actor_pool(workers)
    computed = dataset.map_batches(
        _bound(actor, spec, str(root)),
        batch_size=BLOCK_ROWS,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus,
        num_gpus=workers.gpus,
        max_restarts=RETRIES,
        max_task_retries=RETRIES,
    )
    with worker_errors():
        for batch in computed.iter_batches(batch_size=None, batch_format="numpy"):
            if progress is not None:
                progress(int(batch["rows"].sum()), total)


def _bound(actor: Callable[[ModelSpec, str], Any], spec: ModelSpec, root: str) -> type:
    """`actor` of this spec and store as a class without constructor arguments: Ray Data keeps constructor
    arguments in the object store, from where a restarted actor may not get them back."""

    class Bound(actor):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            super().__init__(spec, root)

    Bound.__name__ = Bound.__qualname__ = f"Bound{getattr(actor, '__name__', 'Actor')}"
    return Bound


def actor_pool(workers: Workers) -> tuple[int, float]:
    """The number of actors and the CPUs of each: by default one per node, using all its CPUs (the backends use
    every core they are given, like a local run)."""
    import ray

    nodes = [node for node in ray.nodes() if node.get("Alive")]  # type: ignore[no-untyped-call]
    node_cpus = [float(node.get("Resources", {}).get("CPU", 0)) for node in nodes] or [1.0]
    cpus = workers.cpus if workers.cpus is not None else max(1.0, min(cpu for cpu in node_cpus if cpu > 0))
    if workers.gpus:
        cpus = workers.cpus if workers.cpus is not None else 1.0
    fits = sum(int(cpu // cpus) for cpu in node_cpus)
    if workers.gpus:
        gpus = float(ray.cluster_resources().get("GPU", 0))  # type: ignore[no-untyped-call]
        fits = min(fits, int(gpus // workers.gpus))
        if fits < 1:
            raise DupfindError(f"the cluster has {gpus:g} GPUs, fewer than one actor's {workers.gpus:g}")
    return max(1, workers.actors or fits), cpus
