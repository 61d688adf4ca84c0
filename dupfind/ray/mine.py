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

The unit vectors are not shipped: the driver writes them from the work folder's store, in row order and a
block at a time, to one file in the work folder (`dupfind.vectors.row_file`), and every task maps it and copies
only the rows of its block or its cells, a thousand at a time, dropping the pages it read after each. The
probes stay in the object store, where the assigning tasks leave them, and the driver receives only each cell's
sizes, to group the cells; a task per block then splits its probes by group (`ann.shares_of`, Ray's task-based
shuffle: one object per group), and each scoring task receives only its group's shares, from which it lists its
cells' rows (`ann.cells_of`): the probes of the rows it scores, a fraction of all of them. The
driver holds the texts, the ids, the k-means sample and the pairs, but neither the vectors nor the probes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

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
from dupfind.ray.encode import embed_to_row_file
from dupfind.ray.session import RETRIES, worker_errors
from dupfind.vectors.encoding import Embeddings, Progress, TokenCounts
from dupfind.vectors.row_file import RowFile, claimed_row_file

TASKS_PER_CPU = 4  # mining tasks per CPU of the cluster: small enough to balance, large enough to amortise
ASSIGN_ROWS = 65_536  # rows assigned their cells per task
ROWS_FOLDER = "rows"  # where in the work folder a run keeps the file of the vectors it mines


def mine_embeddings_ray(
    rows: RowFile,
    threshold: float,
    top_k: int = DEFAULT_TOP_K,
    params: ann.IvfParams = ann.IvfParams(),
    progress: Progress | None = None,
) -> tuple[MinedPairs, NDArray[np.int64]]:
    """`dupfind.pairs.mining.mine_embeddings(index="ann")` on the cluster, of the unit vectors in `rows` (a file that
    every node sees): the same pairs, and the rows that had more than `top_k` neighbours above the threshold.
    `progress(done, total)` counts the cells scored; a task's error comes back in one line (`worker_errors`)."""
    import ray

    check_threshold(threshold)
    check_top_k(top_k)
    n = len(rows)
    if n < 2:
        return MinedPairs.empty(), np.zeros(0, dtype=np.int64)
    with worker_errors():
        centroids = ann.train_centroids(rows, params)
        count = min(params.probes, len(centroids))
        assign = ray.remote(num_returns=2, max_retries=RETRIES)(_assign)
        assigned: list[Any] = [  # per block of rows: the refs of its probes and of its cells' sizes
            assign.remote(rows, centroids, start, start + ASSIGN_ROWS, count) for start in range(0, n, ASSIGN_ROWS)
        ]
        probing, stored = np.sum([ray.get(sizes) for _, sizes in assigned], axis=0)
        cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
        groups = cell_groups(probing * stored, cpus * TASKS_PER_CPU)
        split = ray.remote(num_returns=len(groups), max_retries=RETRIES)(_split)
        shares = [  # per block of rows, the refs of its share of each group's cells
            _listed(split.remote(probes, start, groups, len(centroids)), len(groups))
            for (probes, _), start in zip(assigned, range(0, n, ASSIGN_ROWS), strict=True)
        ]
        del assigned  # each block's probes are freed once split (and rebuilt from lineage if a share is lost)
        score = ray.remote(max_retries=RETRIES)(_score_cells)
        pending = {
            score.remote(rows, group, threshold, top_k, *[block[index] for block in shares]): len(group)
            for index, group in enumerate(groups)
        }
        del shares
        truncated_parts: list[NDArray[np.int64]] = [np.zeros(0, np.int64)]
        mined, truncated = top_k_pairs(_arrivals(pending, truncated_parts, len(centroids), progress), top_k)
    truncated = np.union1d(truncated, np.concatenate(truncated_parts))
    return replace(mined, truncated=len(truncated)), truncated.astype(np.int64)


def _arrivals(
    pending: dict[Any, int], truncated: list[NDArray[np.int64]], cells: int, progress: Progress | None
) -> Iterator[Hits]:
    """The pairs of each scoring task as it finishes (its truncated rows added to `truncated`), its object let go
    of once taken, so that the driver never holds every task's pairs at once besides the merged ones."""
    import ray

    while pending:
        [done], _ = ray.wait(list(pending), num_returns=1)
        part, over = ray.get(done)
        scored = pending.pop(done)
        del done
        truncated.append(over)
        if progress is not None:
            progress(scored, cells)
        yield part.left, part.right, part.scores


def _assign(
    rows: RowFile, centroids: Embeddings, start: int, stop: int, count: int
) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
    """The probes of a block of rows, and how many of them probe, and are stored in, each cell."""
    probes = ann.nearest_cells(rows[start:stop], centroids, count)
    cells = len(centroids)
    return probes, np.stack([np.bincount(probes.ravel(), minlength=cells), np.bincount(probes[:, 0], minlength=cells)])


def _split(
    probes: NDArray[np.int32], start: int, groups: list[NDArray[np.int64]], cells: int
) -> ann.Share | tuple[ann.Share, ...]:
    """A block's share of each group of cells (`ann.shares_of`), one object each (Ray's task-based shuffle)."""
    shares = ann.shares_of(probes, start, groups, cells)
    return shares[0] if len(shares) == 1 else tuple(shares)


def _listed(refs: Any, count: int) -> list[Any]:
    """The `count` results of a task as a list (Ray returns one ref, not a list, for `num_returns=1`)."""
    return [refs] if count == 1 else list(refs)


def _score_cells(
    rows: RowFile, group: NDArray[np.int64], threshold: float, top_k: int, *shares: ann.Share
) -> tuple[MinedPairs, NDArray[np.int64]]:
    """The pairs of some cells, each row keeping its best `top_k` among them (and the rows that had more), from
    every block's share of these cells (`ann.cells_of`): the probes of the rows they concern, no others."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return top_k_pairs((score_cell(rows, cell, threshold) for cell in ann.cells_of(shares, group)), top_k)


def cell_groups(work: NDArray[np.int64], tasks: int) -> list[NDArray[np.int64]]:
    """The cells in about `tasks` groups of about equal `work` (probing × stored products), in cell order."""
    bounds = np.searchsorted(np.cumsum(work), np.linspace(0, work.sum(), tasks + 1)[1:-1], side="right")
    return [group for group in np.split(np.arange(len(work), dtype=np.int64), bounds) if len(group)]


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
    and paired with score 1.0, as locally; the others mined with the inverted-file index (as `--index ann`) from a
    file of their vectors in the work folder, deleted after (by the next run if this one is killed).
    `progress(done, total)` is called as texts are encoded, `mining_progress(done, total)` as cells are scored;
    `tokens`: the texts' token counts, if known."""
    check_threshold(threshold)
    check_top_k(top_k)
    first, inverse = unique_texts(texts)
    if len(first) == 0:
        return RayMined(MinedPairs.empty(), 0, 0)
    distinct = [texts[row] for row in first.tolist()]
    counts = None if tokens is None else np.asarray(tokens)[first]
    with claimed_row_file(work_dir.absolute() / ROWS_FOLDER) as path:
        rows, encoded = embed_to_row_file(distinct, spec, work_dir, path, workers, progress, counts)
        mined, truncated = mine_embeddings_ray(rows, threshold, top_k, params, mining_progress)
    return RayMined(expand_identical(mined, truncated, inverse, top_k), encoded, len(distinct))
