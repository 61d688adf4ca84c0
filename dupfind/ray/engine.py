"""`--engine ray`: read, encode and mine questions on a Ray cluster, finding the pairs a local run finds.

Reading: Ray Data's readers over a file, a folder or a glob of shards (CSV, TSV, JSONL, Parquet, text; gzip
looked through), in file order, then the library's `questions_from_table` (blank rows skipped, ids as
locally). Encoding: the distinct texts (`unique_texts`, as local `mine`) not yet in the work folder go
through `map_batches` over a pool of actors, each loading the encoder once from the model's path and the
backend's name (never a pickled model). Each actor writes each batch it encodes as one Parquet shard
(`k0, k1, vector`: the text's BLAKE2b key as in `dupfind.vectors.cache`, and its unit vector) under
`<work dir>/embeddings/<encoder fingerprint>/`, atomically (temporary name, fsync, rename): a re-run after a
crash, or on a file with new rows, encodes only the texts not yet there, and a retried batch at worst
writes a shard twice (rows are matched by key, so nothing is counted twice).

Mining: the inverted-file index of `dupfind.pairs.ann` on the engine. The centroids come from the same sample
with the same seed as locally (`ann.train_centroids`), each block of rows is assigned its probe cells by a
task (`ann.nearest_cells`), the cells are grouped into tasks of about equal work, and each task scores its
cells with `dupfind.pairs.mining.score_cell` (the same function as the local engine) and keeps each row's
`top_k` (`mining.top_k_pairs`); the driver merges the tasks' pairs with `top_k_pairs` again and expands
identical texts with `mining.expand_identical`. Every pair is found in exactly one cell, and a task's
result is a pure function of its cells, so a retried task neither loses nor duplicates pairs; the result
equals local `mine --index ann` and finds ≥ 99.9 % of `--index exact`'s pairs (docs/scaling.md).

The unit vectors go to every node once through the object store (`ray.put`), and the tasks read the rows
of their cells from there, zero-copy: per node `n · dim · 4` bytes, instead of the `(probes + 1) · n · dim
· 4` bytes of shuffling rows into their cells (less for fewer than `probes + 1` nodes; docs/scaling.md).
The driver holds the texts, the ids, the vectors and the pairs.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.pairs import ann
from dupfind.pairs.identical import Hits, unique_texts
from dupfind.pairs.mining import (
    DEFAULT_TOP_K,
    MinedPairs,
    check_threshold,
    check_top_k,
    expand_identical,
    score_cell,
    top_k_pairs,
)
from dupfind.vectors.backends import DEFAULT_PRECISION
from dupfind.vectors.cache import text_keys
from dupfind.vectors.encoding import DEFAULT_BATCH_SIZE, Embeddings, Progress, TokenCounts, available_cores

if TYPE_CHECKING:
    import pandas as pd

    from dupfind.io.questions import QuestionReader, Questions

RAY_MISSING = "--engine ray needs Ray, which is not installed: pip install 'dupfind[ray]'"
SHARD_ROWS = 4096  # texts an actor encodes, and writes as one shard, at a time
TASKS_PER_CPU = 4  # mining tasks per CPU of the cluster: small enough to balance, large enough to amortise
ASSIGN_ROWS = 65_536  # rows assigned their cells per task
RETRIES = 3  # a failed task is run again, a dead actor restarted, this many times
_READERS = ("csv", "tsv", "jsonl", "parquet", "txt")


def require_ray() -> None:
    """Raise a `DupfindError` saying how to install Ray when it cannot be imported."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise DupfindError(RAY_MISSING) from None


@contextmanager
def ray_session(address: str | None = None, progress_bars: bool = False) -> Iterator[None]:
    """Ray for the block: joined at `address` (`auto`: $RAY_ADDRESS or the cluster running here), else a local
    Ray on every core of this machine, listening on 127.0.0.1 only, shut down after. A Ray this process
    already started is used as it is (and left running). Ray's own log lines and deprecation warnings are
    kept off stderr; its progress bars only with `progress_bars`."""
    require_ray()
    import ray
    from ray.data import DataContext

    with warnings.catch_warnings(), _quiet_loggers():
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category)
        context = DataContext.get_current()
        context.execution_options.preserve_order = True  # rows in file order: row numbers and ties as locally
        context.enable_progress_bars = progress_bars
        context.print_on_execution_start = False
        if ray.is_initialized():
            yield
            return
        settings: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
        if address is None:
            loopback_only()
            settings |= {"num_cpus": available_cores(), "include_dashboard": False, "_node_ip_address": "127.0.0.1"}
        try:
            ray.init(address=address, **settings)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise DupfindError(f"cannot start or join Ray at {address or 'this machine'}: {exc}") from None
        try:
            yield
        finally:
            ray.shutdown()


@contextmanager
def _quiet_loggers() -> Iterator[None]:
    """Ray's loggers quiet for the block: Ray Data logs every dataset it runs at INFO, and a worker's failure
    with its traceback at ERROR, which dupfind reports in one line itself."""
    loggers = [logging.getLogger(name) for name in ("ray", "ray.data")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def loopback_only() -> None:
    """Make a Ray started by this process listen on 127.0.0.1 only. Ray turns `_node_ip_address="127.0.0.1"`
    into this machine's address unless clusters are off (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`), a setting
    it reads when imported: set for the processes it starts, and for this one if it imported Ray already."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


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


# Reading


def read_questions_ray(source: str, reader: QuestionReader) -> Questions:
    """The questions of a file, a folder of shards or a glob, read with Ray Data's readers, in file order."""
    from dupfind.io.questions import questions_from_table
    from dupfind.io.read import Table

    paths = input_paths(source)
    fmt = reader.format_in or _format_of(paths)
    frame = _read_frame(source, paths, fmt, reader).to_pandas()
    return questions_from_table(
        source, Table(fmt, frame, list(range(1, len(frame) + 1))), reader.text_col, reader.id_col
    )


def input_paths(source: str) -> list[str]:
    """The files of an input: itself, the files of a folder (recursively, hidden ones left out) or of a glob."""
    if source == "-":
        raise DupfindError("--engine ray reads files, not stdin")
    path = Path(source)
    if path.is_dir():
        files = sorted(
            str(file)
            for file in path.rglob("*")
            if file.is_file() and not any(part.startswith((".", "_")) for part in file.relative_to(path).parts)
        )
    elif path.exists():
        files = [str(path)]
    else:
        files = sorted(file for file in glob.glob(source, recursive=True) if Path(file).is_file())
    if not files:
        raise DupfindError(f"{source}: no such file, folder or matching files")
    return [str(Path(file).resolve()) for file in files]


def _format_of(paths: Sequence[str]) -> str:
    from dupfind.io.formats import format_from_path

    formats = {format_from_path(path) for path in paths}
    if len(formats) != 1 or None in formats:
        named = ", ".join(sorted(str(fmt) for fmt in formats))
        raise DupfindError(f"cannot tell one input format from the extensions ({named}); use --format-in")
    fmt = formats.pop()
    assert fmt is not None
    return fmt


def _read_frame(source: str, paths: list[str], fmt: str, reader: QuestionReader) -> Any:
    """A Ray dataset of the input's rows."""
    import pyarrow.csv as pacsv
    import ray.data

    if fmt not in _READERS:
        raise DupfindError(f"--engine ray reads {', '.join(_READERS)} inputs, not {fmt}")
    compressed = {"compression": "gzip"} if paths[0].endswith(".gz") else {}
    try:
        if fmt in ("csv", "tsv"):
            return ray.data.read_csv(
                paths,
                parse_options=pacsv.ParseOptions(delimiter="," if fmt == "csv" else "\t", newlines_in_values=True),
                read_options=pacsv.ReadOptions(encoding=reader.encoding),
                convert_options=pacsv.ConvertOptions(strings_can_be_null=False),
                arrow_open_stream_args=compressed,
            )
        if fmt == "jsonl":  # compression told by the extension
            return ray.data.read_json(paths, lines=True)
        if fmt == "parquet":
            return ray.data.read_parquet(paths)
        return ray.data.read_text(paths, encoding=reader.encoding, arrow_open_stream_args=compressed).rename_columns(
            {"text": "question"}
        )
    except (OSError, ValueError) as exc:
        raise DupfindError(f"{source}: cannot read it as {fmt} ({str(exc).splitlines()[0]})") from None


# Encoding


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
    yet in `work_dir`'s shards for this encoder (as `Embedder.embed` does with the local cache)."""
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
    `work_dir`'s shards for this encoder; and how many were encoded now. `progress(done, total)` is called as
    batches are written. With the texts' token counts, the texts go to the actors longest first, with their
    counts, so that each batch pads as little as locally and no actor counts tokens again."""
    import ray.data

    folder = embeddings_folder(work_dir.absolute(), spec.fingerprint)
    folder.mkdir(parents=True, exist_ok=True)
    keys = text_keys(texts)
    _, found = read_embeddings(folder, keys, vectors=False)
    missing = np.flatnonzero(~found)
    if len(missing):
        import pyarrow as pa

        columns = {}
        if tokens is not None:
            missing = missing[np.argsort(-np.asarray(tokens)[missing], kind="stable")]
            columns["tokens"] = pa.array(np.asarray(tokens, dtype=np.int64)[missing])
        columns["text"] = pa.array([texts[i] for i in missing.tolist()], pa.large_string())
        table = pa.table(columns)
        # One block per shard, made here: no task runs beside the actors, which may hold every CPU.
        dataset = ray.data.from_arrow([table.slice(start, SHARD_ROWS) for start in range(0, len(missing), SHARD_ROWS)])
        actors, cpus = _actor_pool(workers)
        encoded = dataset.map_batches(
            _bound_actor(spec, str(folder)),
            batch_size=SHARD_ROWS,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=cpus,
            num_gpus=workers.gpus,
            max_restarts=RETRIES,
            max_task_retries=RETRIES,
        )
        try:
            for batch in encoded.iter_batches(batch_size=None, batch_format="numpy"):
                if progress is not None:
                    progress(int(batch["rows"].sum()), len(missing))
        except Exception as exc:
            error = worker_error(exc)
            if error is None:
                raise
            raise error from None
    vectors, found = read_embeddings(folder, keys)
    if not found.all() or vectors is None:
        raise DupfindError(
            f"{int((~found).sum())} questions were not found embedded in {folder}: "
            "is --work-dir on a file system that every node of the cluster sees?"
        )
    return vectors, len(missing)


def worker_error(exc: Exception) -> DupfindError | None:
    """The `DupfindError` that a worker raised (an encoder it cannot load, another model on its node), as
    its own one-line error, out of the exception Ray raises on the driver; None if there is none. A task's
    error is its `cause`; an actor that failed to start leaves only its traceback's text (`ActorDiedError`)."""
    seen: set[int] = set()
    found: BaseException | None = exc
    while found is not None and id(found) not in seen:
        seen.add(id(found))
        cause = getattr(found, "cause", None)
        if isinstance(found, DupfindError) and not isinstance(cause, BaseException):
            return DupfindError(str(found.args[0]) if found.args else str(found))
        told = _TOLD.findall(str(found))
        if told:
            return DupfindError(told[-1].strip())
        found = cause if isinstance(cause, BaseException) else (found.__cause__ or found.__context__)
    return None


_TOLD = re.compile(r"^dupfind\.errors\.DupfindError: (.+)$", re.MULTILINE)


def embeddings_folder(work_dir: Path, fingerprint: str) -> Path:
    """Where the shards of one encoder's embeddings are kept in a work folder."""
    from dupfind.vectors.cache import EmbeddingCache

    return EmbeddingCache(work_dir / "embeddings").folder(fingerprint)


def read_embeddings(
    folder: Path, keys: NDArray[np.uint64], vectors: bool = True
) -> tuple[Embeddings | None, NDArray[np.bool_]]:
    """The vectors of `keys` in a folder's shards (None when `vectors` is False or none is found), and which
    keys were found. A shard that cannot be read is skipped (its texts are encoded again)."""
    import pandas as pd
    import pyarrow.parquet as pq

    found = np.zeros(len(keys), dtype=bool)
    out: Embeddings | None = None
    wanted = pd.MultiIndex.from_arrays([keys[:, 0], keys[:, 1]]) if len(keys) else None
    for shard in sorted(folder.glob("*.parquet")):
        try:
            table = pq.read_table(shard, columns=["k0", "k1", "vector"] if vectors else ["k0", "k1"])
        except (OSError, ValueError):
            continue
        if wanted is None or table.num_rows == 0:
            continue
        shard_keys = pd.MultiIndex.from_arrays([table["k0"].to_numpy(), table["k1"].to_numpy()])
        rows = shard_keys.get_indexer_for(wanted) if shard_keys.is_unique else _first_rows(shard_keys, wanted)
        hit = (rows >= 0) & ~found
        if not hit.any():
            continue
        if vectors:
            column = table["vector"].combine_chunks()
            dim = column.type.list_size
            stored = column.values.to_numpy().reshape(-1, dim)
            if out is None:
                out = np.empty((len(keys), dim), dtype=np.float32)
            out[hit] = stored[rows[hit]]
        found |= hit
    return out, found


def _first_rows(table: pd.MultiIndex, wanted: pd.MultiIndex) -> NDArray[np.int64]:
    unique = ~table.duplicated()
    rows = np.flatnonzero(unique)
    positions: NDArray[np.int64] = table[unique].get_indexer_for(wanted)
    return np.where(positions >= 0, rows[np.maximum(positions, 0)], -1)


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


def _bound_actor(spec: EncoderSpec, folder: str) -> type[EncodeActor]:
    """`EncodeActor` of this spec and folder as a class without constructor arguments: Ray Data keeps
    constructor arguments in the object store, from where a restarted actor may not get them back."""

    class BoundEncodeActor(EncodeActor):
        def __init__(self) -> None:
            super().__init__(spec, folder)

    return BoundEncodeActor


class EncodeActor:
    """Loads the encoder once; encodes a batch of texts and writes it as one shard, atomically."""

    def __init__(self, spec: EncoderSpec, folder: str) -> None:
        from dupfind.vectors.backends import load_encoder

        self.encoder = load_encoder(spec.model, spec.backend, spec.precision, spec.device)
        if self.encoder.fingerprint != spec.fingerprint:
            raise DupfindError(
                f"the encoder on node {os.uname().nodename} is {self.encoder.fingerprint}, "
                f"not {spec.fingerprint} as on the driver: install the same model on every node"
            )
        self.batch_size = spec.batch_size
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, batch: Any) -> dict[str, NDArray[np.int64]]:
        from dupfind.vectors.encoding import encode

        texts: list[str] = batch.column("text").to_pylist()
        tokens = batch.column("tokens").to_numpy() if "tokens" in batch.column_names else None
        if texts:
            write_shard(self.folder, text_keys(texts), encode(self.encoder, texts, self.batch_size, tokens=tokens))
        return {"rows": np.array([len(texts)], dtype=np.int64)}


def write_shard(folder: Path, keys: NDArray[np.uint64], vectors: Embeddings) -> Path:
    """Write keys and vectors as one Parquet shard: under a temporary name, fsynced, renamed into place."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dupfind.io.atomic import replacing

    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel())
    table = pa.table(
        {
            "k0": pa.array(keys[:, 0]),
            "k1": pa.array(keys[:, 1]),
            "vector": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]),
        }
    )
    path = folder / f"{uuid.uuid4().hex}.parquet"
    with replacing(path) as handle:
        pq.write_table(table, handle)
    return path


# Mining


def mine_embeddings_ray(
    embeddings: Embeddings,
    threshold: float,
    top_k: int = DEFAULT_TOP_K,
    params: ann.IvfParams = ann.IvfParams(),
    progress: Progress | None = None,
) -> tuple[MinedPairs, NDArray[np.int64]]:
    """`dupfind.pairs.mining.mine_embeddings(index="ann")` on the cluster: the same pairs, and the rows that had more
    than `top_k` neighbours above the threshold. `progress(done, total)` counts the cells scored."""
    import ray

    check_threshold(threshold)
    check_top_k(top_k)
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = len(embeddings)
    if n < 2:
        return MinedPairs.empty(), np.zeros(0, dtype=np.int64)
    centroids = ann.train_centroids(embeddings, params)
    count = min(params.probes, len(centroids))
    vectors = ray.put(embeddings)
    assign = ray.remote(max_retries=RETRIES)(_assign)
    blocks = [
        assign.remote(vectors, centroids, start, start + ASSIGN_ROWS, count) for start in range(0, n, ASSIGN_ROWS)
    ]
    probes: NDArray[np.int32] = np.concatenate(ray.get(blocks))
    cells = ann.cells_from_probes(probes, len(centroids))
    score = ray.remote(max_retries=RETRIES)(_score_cells)
    probes_ref = ray.put(probes)
    cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
    groups = _cell_groups(cells, cpus * TASKS_PER_CPU)
    pending = {
        score.remote(vectors, probes_ref, [cells.cell(c) for c in group], threshold, top_k): len(group)
        for group in groups
    }
    parts: list[tuple[MinedPairs, NDArray[np.int64]]] = []
    waiting = list(pending)
    while waiting:
        done, waiting = ray.wait(waiting, num_returns=1)
        parts.append(ray.get(done[0]))
        if progress is not None:
            progress(pending[done[0]], len(cells))
    mined, truncated = top_k_pairs(((part.left, part.right, part.scores) for part, _ in parts), top_k)
    truncated = np.union1d(truncated, np.concatenate([rows for _, rows in parts] + [np.zeros(0, np.int64)]))
    return replace(mined, truncated=len(truncated)), truncated.astype(np.int64)


def _assign(vectors: Embeddings, centroids: Embeddings, start: int, stop: int, count: int) -> NDArray[np.int32]:
    return ann.nearest_cells(vectors[start:stop], centroids, count)


def _score_cells(
    vectors: Embeddings,
    probes: NDArray[np.int32],
    cells: list[tuple[NDArray[np.int64], NDArray[np.int64]]],
    threshold: float,
    top_k: int,
) -> tuple[MinedPairs, NDArray[np.int64]]:
    """The pairs of some cells, each row keeping its best `top_k` among them (and the rows that had more)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        hits: Iterator[Hits] = (score_cell(vectors, probing, stored, probes, threshold) for probing, stored in cells)
        return top_k_pairs(hits, top_k)


def _cell_groups(cells: ann.Cells, tasks: int) -> list[list[int]]:
    """The cells in about `tasks` groups of about equal work (probing × stored products), in cell order."""
    work = np.diff(cells.probing_at) * np.diff(cells.stored_at)
    bounds = np.searchsorted(np.cumsum(work), np.linspace(0, work.sum(), tasks + 1)[1:-1], side="right")
    groups = [group.tolist() for group in np.split(np.arange(len(cells)), bounds)]
    return [group for group in groups if group]


# The pipeline


@dataclass(frozen=True)
class RayMined:
    """What `mine_texts_ray` found: the pairs (rows of the texts), and how many distinct texts were encoded now."""

    pairs: MinedPairs
    encoded: int
    distinct: int


def mine_texts_ray(
    texts: Sequence[str],
    spec: EncoderSpec,
    work_dir: Path,
    threshold: float,
    top_k: int = DEFAULT_TOP_K,
    workers: Workers = Workers(),
    params: ann.IvfParams = ann.IvfParams(),
    progress: Progress | None = None,
    tokens: TokenCounts | None = None,
    mining_progress: Progress | None = None,
) -> RayMined:
    """`dupfind.pairs.mining.mine_texts` on the cluster: identical texts (up to case and whitespace) embedded once
    and paired with score 1.0, as locally; the others mined with the inverted-file index (as `--index ann`).
    `progress(done, total)` is called as texts are encoded, `mining_progress(done, total)` as cells are
    scored; `tokens`: the texts' token counts, if known."""
    check_threshold(threshold)
    check_top_k(top_k)
    first, inverse = unique_texts(texts)
    distinct = [texts[row] for row in first.tolist()]
    counts = None if tokens is None else np.asarray(tokens)[first]
    embeddings, encoded = embed_ray(distinct, spec, work_dir, workers, progress, counts)
    mined, truncated = mine_embeddings_ray(embeddings, threshold, top_k, params, mining_progress)
    return RayMined(expand_identical(mined, truncated, inverse, top_k), encoded, len(distinct))
