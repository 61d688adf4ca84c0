"""`--engine ray`'s encoding: the texts not yet in the work folder go through `map_batches` over a pool of
actors, each loading the encoder once from the model's path and the backend's name (never a pickled model).

The work folder's embeddings are an `EmbeddingCache` rooted at `<work dir>/embeddings` (`work_store`): the
local cache's shards, checksums and validation, so that a damaged shard is dropped with a warning and its
texts encoded again, never used. Each actor stores each block it encodes as one shard (atomically; a retried
block at worst stores a shard twice, and rows are matched by key, so nothing counts twice); only the driver
merges shards, before and after the actors run, so that no two processes of a run merge at once.

`--backend auto` and `--precision auto` are resolved on each node, with its own CPU features, by the same
`resolve_choice` as locally (`choose_on_nodes`); the actors all run the most conservative of the nodes'
choices (`precision.most_conservative`), so that a run's vectors are of one precision and one fingerprint.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.ray.session import RETRIES, worker_errors
from dupfind.vectors.backends import DEFAULT_PRECISION
from dupfind.vectors.cache import EmbeddingCache, text_keys
from dupfind.vectors.encoding import DEFAULT_BATCH_SIZE, Embeddings, Progress, TokenCounts
from dupfind.vectors.precision import Choice, most_conservative

SHARD_ROWS = 4096  # texts an actor encodes, and stores as one shard, at a time


@dataclass(frozen=True)
class EncoderSpec:
    """How a worker loads the encoder: the model's name or path (None: built-in), the backend's name, the
    precision and the device (`cpu`, or `cuda` for actors given GPUs), and the fingerprint it must have (a node
    with another model on that path is an error, not mixed embeddings)."""

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
    ) -> EncoderSpec:
        """The spec of a model given as on the command line: a local folder is named by its absolute path."""
        if model is not None and Path(model).exists():
            model = str(Path(model).resolve())
        return cls(model, backend, fingerprint, batch_size, precision, device)


@dataclass(frozen=True)
class Workers:
    """How many encoder actors, and the CPUs and GPUs of each (None: one actor per node, with its CPUs)."""

    actors: int | None = None
    cpus: float | None = None
    gpus: float = 0.0


@dataclass(frozen=True)
class NodeChoices:
    """What the options asked choose on each node with CPUs (by node), and what every encoder actor runs."""

    nodes: dict[str, Choice]
    agreed: Choice


def choose_on_nodes(backend: str, precision: str) -> NodeChoices:
    """Resolve the backend and precision asked (either may be `auto`) on every live node with CPUs, for encoder
    actors on its CPUs, as `resolve_choice` does there with that node's CPU features; the actors then all run
    the most conservative of these choices. A value the nodes cannot resolve is the node's one-line error."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [node for node in ray.nodes() if node.get("Alive") and node.get("Resources", {}).get("CPU", 0) > 0]  # type: ignore[no-untyped-call]
    probe = ray.remote(num_cpus=0, max_retries=RETRIES)(_node_choice)
    pending = {
        f"{node['NodeManagerHostname']} ({node['NodeID'][:8]})": probe.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
        ).remote(backend, precision)
        for node in nodes
    }
    with worker_errors():
        chosen = dict(zip(pending, ray.get(list(pending.values())), strict=True))
    return NodeChoices(chosen, most_conservative(chosen.values()))


def _node_choice(backend: str, precision: str) -> Choice:
    """The choice of this node for an encoder actor on its CPUs."""
    from dupfind.vectors.backends import resolve_choice

    return resolve_choice(backend, precision, "cpu")


def work_store(work_dir: Path) -> EmbeddingCache:
    """The embeddings kept in a work folder, by encoder fingerprint and text."""
    return EmbeddingCache(work_dir.absolute() / "embeddings")


@dataclass(frozen=True)
class RayEmbedded:
    """What `embed_texts_ray` found: one unit embedding per text, and how many distinct texts were encoded now."""

    embeddings: Embeddings
    encoded: int
    distinct: int


def embed_texts_ray(
    texts: Sequence[str],
    spec: EncoderSpec,
    work_dir: Path,
    workers: Workers = Workers(),
    progress: Progress | None = None,
) -> RayEmbedded:
    """The unit embedding of each text, each distinct text encoded once on the cluster, and only when it is not
    yet in the work folder for this encoder (as `Embedder.embed` does with the local cache)."""
    import pandas as pd

    rows, distinct = pd.factorize(pd.Series(list(texts), dtype=object), sort=False)
    vectors, encoded = embed_ray(list(distinct), spec, work_dir, workers, progress)
    return RayEmbedded(vectors[rows], encoded, len(distinct))


def embed_ray(
    texts: Sequence[str],
    spec: EncoderSpec,
    work_dir: Path,
    workers: Workers = Workers(),
    progress: Progress | None = None,
    tokens: TokenCounts | None = None,
) -> tuple[Embeddings, int]:
    """The unit embeddings of distinct `texts`, one row each, encoding on the cluster only those not yet in
    the work folder for this encoder; and how many were encoded now. `progress(done, total)` is called as
    blocks are stored. With the texts' token counts, the texts go to the actors longest first, with their
    counts, so that each batch pads as little as locally and no actor counts tokens again."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32), 0
    store = work_store(work_dir)
    keys = text_keys(texts)
    store.compact(spec.fingerprint)
    vectors, found = store.lookup(spec.fingerprint, keys)
    missing = np.flatnonzero(~found)
    if len(missing):
        if tokens is not None:
            missing = missing[np.argsort(-np.asarray(tokens)[missing], kind="stable")]
        _encode_on_actors(texts, missing, tokens, spec, store.root, workers, progress)
        store.compact(spec.fingerprint)
        fresh, stored = store.lookup(spec.fingerprint, keys[missing])
        if not stored.all() or fresh is None:
            raise DupfindError(
                f"{int((~stored).sum())} questions were not found embedded in {store.folder(spec.fingerprint)}: "
                "is --work-dir on a file system that every node of the cluster sees?"
            )
        if vectors is None:
            vectors = np.empty((len(texts), fresh.shape[1]), dtype=np.float32)
        vectors[missing] = fresh
    assert vectors is not None  # every text was found, or encoded now
    return vectors, len(missing)


def _encode_on_actors(
    texts: Sequence[str],
    rows: NDArray[np.intp],
    tokens: TokenCounts | None,
    spec: EncoderSpec,
    root: Path,
    workers: Workers,
    progress: Progress | None,
) -> None:
    """Encode the texts of `rows`, in that order, on the actor pool, each block stored as a shard under `root`."""
    import pyarrow as pa
    import ray.data

    columns = {}
    if tokens is not None:
        columns["tokens"] = pa.array(np.asarray(tokens, dtype=np.int64)[rows])
    columns["text"] = pa.array([texts[i] for i in rows.tolist()], pa.large_string())
    table = pa.table(columns)
    # One block per shard, made here: no task runs beside the actors, which may hold every CPU.
    dataset = ray.data.from_arrow([table.slice(start, SHARD_ROWS) for start in range(0, len(rows), SHARD_ROWS)])
    actors, cpus = _actor_pool(workers)
    encoded = dataset.map_batches(
        _bound_actor(spec, str(root)),
        batch_size=SHARD_ROWS,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus,
        num_gpus=workers.gpus,
        max_restarts=RETRIES,
        max_task_retries=RETRIES,
    )
    with worker_errors():
        for batch in encoded.iter_batches(batch_size=None, batch_format="numpy"):
            if progress is not None:
                progress(int(batch["rows"].sum()), len(rows))


def _actor_pool(workers: Workers) -> tuple[int, float]:
    """The number of encoder actors and the CPUs of each: by default one per node, using all its CPUs (the
    backends use every core they are given, like a local run)."""
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


def _bound_actor(spec: EncoderSpec, root: str) -> type[EncodeActor]:
    """`EncodeActor` of this spec and store as a class without constructor arguments: Ray Data keeps
    constructor arguments in the object store, from where a restarted actor may not get them back."""

    class BoundEncodeActor(EncodeActor):
        def __init__(self) -> None:
            super().__init__(spec, root)

    return BoundEncodeActor


class EncodeActor:
    """Loads the encoder once; encodes a batch of texts and stores it as one shard of the embedding store at
    `root` (a work folder's `work_store(...).root`), never merging shards (the driver does)."""

    def __init__(self, spec: EncoderSpec, root: str) -> None:
        from dupfind.vectors.backends import load_encoder

        self.encoder = load_encoder(spec.model, spec.backend, spec.precision, spec.device)
        if self.encoder.fingerprint != spec.fingerprint:
            raise DupfindError(
                f"the encoder on node {os.uname().nodename} is {self.encoder.fingerprint}, "
                f"not {spec.fingerprint} as on the driver: install the same model on every node"
            )
        self.batch_size = spec.batch_size
        self.store = EmbeddingCache(Path(root))

    def __call__(self, batch: Any) -> dict[str, NDArray[np.int64]]:
        from dupfind.vectors.encoding import encode

        texts: list[str] = batch.column("text").to_pylist()
        tokens = batch.column("tokens").to_numpy() if "tokens" in batch.column_names else None
        if texts:
            vectors = encode(self.encoder, texts, self.batch_size, tokens=tokens)
            self.store.store(self.encoder.fingerprint, text_keys(texts), vectors, compact=False)
        return {"rows": np.array([len(texts)], dtype=np.int64)}
