"""`--engine ray`'s mining: the inverted-file index of `dupfind.pairs.ann` on the cluster, finding the pairs of
local `mine --index ann`.

The centroids come from the same sample with the same seed as locally (`ann.train_centroids`), each block of
rows is assigned its probe cells by a task (`ann.nearest_cells`), the cells are grouped into tasks of about
equal work, and each task scores its cells with `dupfind.pairs.mining.score_cell` (the same function as the
local engine) and keeps each row's `top_k` (`mining.top_k_pairs`); the driver merges the tasks' pairs with
`top_k_pairs` again and expands identical texts with `mining.expand_identical`. Every pair is found in exactly
one cell, and a task's result is a pure function of its cells, so a retried task neither loses nor duplicates
pairs; the result equals local `mine --index ann` and finds ≥ 99.9 % of `--index exact`'s pairs
(docs/scaling.md).

The unit vectors go to every node once through the object store (`ray.put`), and the tasks read the rows
of their cells from there, zero-copy: per node `n · dim · 4` bytes, instead of the `(probes + 1) · n · dim
· 4` bytes of shuffling rows into their cells (less for fewer than `probes + 1` nodes; docs/scaling.md).
The driver holds the texts, the ids, the vectors and the pairs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

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
from dupfind.ray.actors import ModelSpec, Workers
from dupfind.ray.encode import embed_ray
from dupfind.ray.session import RETRIES, worker_errors
from dupfind.vectors.encoding import Embeddings, Progress, TokenCounts

TASKS_PER_CPU = 4  # mining tasks per CPU of the cluster: small enough to balance, large enough to amortise
ASSIGN_ROWS = 65_536  # rows assigned their cells per task


def mine_embeddings_ray(
    embeddings: Embeddings,
    threshold: float,
    top_k: int = DEFAULT_TOP_K,
    params: ann.IvfParams = ann.IvfParams(),
    progress: Progress | None = None,
) -> tuple[MinedPairs, NDArray[np.int64]]:
    """`dupfind.pairs.mining.mine_embeddings(index="ann")` on the cluster: the same pairs, and the rows that had more
    than `top_k` neighbours above the threshold. `progress(done, total)` counts the cells scored; a task's error
    comes back in one line (`worker_errors`)."""
    import ray

    check_threshold(threshold)
    check_top_k(top_k)
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = len(embeddings)
    if n < 2:
        return MinedPairs.empty(), np.zeros(0, dtype=np.int64)
    with worker_errors():
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


@dataclass(frozen=True)
class RayMined:
    """What `mine_texts_ray` found: the pairs (rows of the texts), and how many distinct texts were encoded now."""

    pairs: MinedPairs
    encoded: int
    distinct: int


def mine_texts_ray(
    texts: Sequence[str],
    spec: ModelSpec,
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
