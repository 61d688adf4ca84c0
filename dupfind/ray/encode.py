"""`--engine ray`'s encoding: the texts not yet in the work folder go through `map_batches` over a pool of
actors, each loading the encoder once from the model's path and the backend's name (never a pickled model).

The work folder's embeddings are an `EmbeddingCache` rooted at `<work dir>/embeddings` (`work_store`): the
local cache's shards, checksums and validation, so that a damaged shard is dropped with a warning and its
texts encoded again, never used. Each actor stores each block it encodes as one shard (`dupfind.ray.actors`).

`--backend auto` and `--precision auto` are resolved on each node, with its own CPU features, by the same
`resolve_choice` as locally (`choose_on_nodes`); the actors all run the most conservative of the nodes'
choices (`precision.most_conservative`), so that a run's vectors are of one precision and one fingerprint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dupfind.ray.actors import ModelSpec, Workers, complete_work_store, run_on_actors
from dupfind.ray.session import RETRIES, worker_errors
from dupfind.vectors.cache import EmbeddingCache, Keys, text_keys
from dupfind.vectors.encoding import Embeddings, Progress, TokenCounts
from dupfind.vectors.precision import Choice, most_conservative
from dupfind.vectors.row_file import RowFile, write_row_file


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
    spec: ModelSpec,
    work_dir: Path,
    workers: Workers = Workers(),
    progress: Progress | None = None,
) -> RayEmbedded:
    """The unit embedding of each text, each distinct text encoded once on the cluster, and only when it is not
    yet in the work folder for this encoder (as `Embedder.embed` does with the local cache)."""
    import pandas as pd

    rows, distinct = pd.factorize(pd.Series(list(texts), dtype=object), sort=False)
    if len(distinct) == 0:
        return RayEmbedded(np.zeros((0, 0), dtype=np.float32), 0, 0)
    distinct_texts = list(distinct)
    keys = text_keys(distinct_texts)
    encoded = store_embeddings_ray(distinct_texts, keys, spec, work_dir, workers, progress)
    vectors, _ = work_store(work_dir).lookup(spec.fingerprint, keys)
    assert vectors is not None  # every text was found, or encoded now
    return RayEmbedded(vectors[rows], encoded, len(distinct))


def embed_to_row_file(
    texts: Sequence[str],
    spec: ModelSpec,
    work_dir: Path,
    path: Path,
    workers: Workers = Workers(),
    progress: Progress | None = None,
    tokens: TokenCounts | None = None,
) -> tuple[RowFile, int]:
    """The unit embeddings of distinct `texts` (at least one), encoding on the cluster only those not yet in the work
    folder for this encoder, written in order to the file `path` (on a file system that every node sees) a block
    at a time, never all in this process's memory; and how many were encoded now."""
    keys = text_keys(texts)
    encoded = store_embeddings_ray(texts, keys, spec, work_dir, workers, progress, tokens)
    blocks = work_store(work_dir).ordered_blocks(spec.fingerprint, keys)
    return write_row_file(path, len(texts), blocks), encoded


def store_embeddings_ray(
    texts: Sequence[str],
    keys: Keys,
    spec: ModelSpec,
    work_dir: Path,
    workers: Workers = Workers(),
    progress: Progress | None = None,
    tokens: TokenCounts | None = None,
) -> int:
    """Encode on the cluster those of the distinct `texts` (their `text_keys`: `keys`) that the work folder does not
    hold yet for this encoder, and store them there; returns how many were encoded now. `progress(done, total)` is
    called as blocks are stored. With the texts' token counts, the texts go to the actors longest first, with their
    counts, so that each batch pads as little as locally and no actor counts tokens again."""
    store = work_store(work_dir)

    def encode(rows: NDArray[np.intp]) -> None:
        if tokens is not None:
            rows = rows[np.argsort(-np.asarray(tokens)[rows], kind="stable")]
        _encode_on_actors(texts, rows, tokens, spec, store.root, workers, progress)

    return complete_work_store(store, spec.fingerprint, keys, encode, "questions")


def _encode_on_actors(
    texts: Sequence[str],
    rows: NDArray[np.intp],
    tokens: TokenCounts | None,
    spec: ModelSpec,
    root: Path,
    workers: Workers,
    progress: Progress | None,
) -> None:
    """Encode the texts of `rows`, in that order, on the actor pool, each block stored as a shard under `root`."""
    import pyarrow as pa

    columns = {}
    if tokens is not None:
        columns["tokens"] = pa.array(np.asarray(tokens, dtype=np.int64)[rows])
    columns["text"] = pa.array([texts[i] for i in rows.tolist()], pa.large_string())
    run_on_actors(columns, EncodeActor, spec, root, workers, progress, len(rows))


class EncodeActor:
    """Loads the encoder once; encodes a batch of texts and stores it as one shard of the embedding store at
    `root` (a work folder's `work_store(...).root`), never merging shards (the driver does)."""

    def __init__(self, spec: ModelSpec, root: str) -> None:
        from dupfind.vectors.backends import load_encoder

        self.encoder = load_encoder(spec.model, spec.backend, spec.precision, spec.device)
        spec.check_loaded(self.encoder.fingerprint, "encoder")
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
