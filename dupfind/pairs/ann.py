"""An inverted-file index for approximate mining: rows grouped into cells by k-means, each probing its nearest cells.

Every row is stored in the cell of its nearest centroid and probes its `probes` nearest cells; a pair of
rows is compared (exactly) when one of them is stored in a cell the other probes. Near-duplicates sit in
the same or neighbouring cells, so nearly all pairs above a high threshold are compared, for about
`2 · probes / cells` of the work of comparing them all. Deterministic for a given seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dupfind.vectors.encoding import Embeddings
from dupfind.vectors.row_file import RowFile

Mapper = Callable[[Callable[[Any], Any], Iterable[Any]], Iterator[Any]]
_BLOCK_ROWS = 1024


@dataclass(frozen=True)
class IvfParams:
    """`cells = cells_factor · √n` cells, `probes` probed per row, k-means on `sample_per_cell` rows per cell
    for `iterations` rounds. Assigning costs `n · cells` products and comparing `n² · probes / cells`, so
    `cells_factor ≈ √probes` balances them; on real questions pair recall grows with `probes` and barely
    depends on `cells`.
    """

    cells_factor: float = 5.0
    probes: int = 24
    iterations: int = 2
    sample_per_cell: int = 16
    seed: int = 0

    def cells(self, rows: int) -> int:
        return max(1, min(rows // 8, round(self.cells_factor * math.sqrt(rows))))


@dataclass(frozen=True)
class CellRows:
    """One cell, as scoring it needs: the rows probing it (ascending) with the cell each is stored in (`homes`),
    and the rows stored in it (ascending) with the cells each probes (`probes`, its own first)."""

    probing: NDArray[np.int64]
    homes: NDArray[np.int32]
    stored: NDArray[np.int64]
    probes: NDArray[np.int32]


@dataclass(frozen=True)
class Cells:
    """`probes[i]`: the cells that row `i` probes, the one it is stored in (its nearest) first. For each
    cell `c`: the rows stored in it, `stored[stored_at[c]:stored_at[c + 1]]`, and the rows probing it,
    `probing[probing_at[c]:probing_at[c + 1]]`."""

    probes: NDArray[np.int32]
    stored: NDArray[np.int64]
    stored_at: NDArray[np.int64]
    probing: NDArray[np.int64]
    probing_at: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.stored_at) - 1

    def cell(self, cell: int) -> CellRows:
        """The rows probing a cell and the rows stored in it."""
        probing = self.probing[self.probing_at[cell] : self.probing_at[cell + 1]]
        stored = self.stored[self.stored_at[cell] : self.stored_at[cell + 1]]
        return CellRows(probing, self.probes[probing, 0], stored, self.probes[stored])

    def probed(self, rows: NDArray[np.int64], cells: NDArray[np.int32]) -> NDArray[np.bool_]:
        """Whether each row probes the cell beside it."""
        found: NDArray[np.bool_] = (self.probes[rows] == cells[:, None]).any(axis=1)
        return found


def partition(embeddings: Embeddings, params: IvfParams = IvfParams(), mapper: Mapper = map) -> Cells:
    """Cluster the rows and list, per cell, the rows stored in it and the rows probing it."""
    centroids = train_centroids(embeddings, params, mapper)
    probes = nearest_cells(embeddings, centroids, min(params.probes, len(centroids)), mapper)
    return cells_from_probes(probes, len(centroids))


def train_centroids(
    embeddings: Embeddings | RowFile, params: IvfParams = IvfParams(), mapper: Mapper = map
) -> Embeddings:
    """The `params.cells(len(embeddings))` centroids of the index: spherical k-means of a sample of the rows (in
    memory or in a file), deterministic for a given seed (so that every engine partitions the same rows alike)."""
    rng = np.random.default_rng(params.seed)
    return _kmeans(embeddings, params.cells(len(embeddings)), params, rng, mapper)


def nearest_cells(rows: Embeddings, centroids: Embeddings, count: int, mapper: Mapper = map) -> NDArray[np.int32]:
    """Each row's `count` nearest cells, nearest (the one it is stored in) first: its probes."""
    return _nearest(rows, centroids, count, mapper)


def cells_from_probes(probes: NDArray[np.int32], count: int) -> Cells:
    """The `count` cells of rows probing `probes` (each row stored in its first probe)."""
    probing = np.argsort(probes.ravel(), kind="stable") // probes.shape[1]
    return Cells(
        probes,
        np.argsort(probes[:, 0], kind="stable"),
        _bounds(probes[:, 0], count),
        probing,
        _bounds(probes.ravel(), count),
    )


@dataclass(frozen=True)
class Share:
    """What a block of consecutive rows gives to some cells: its rows probing them, with the cell probed and each
    row's home (the cell it is stored in), and its rows stored in them, with their probes. The shares of every
    block, in row order, hold all that scoring those cells needs (`cells_of`), a fraction of all the probes."""

    probing: NDArray[np.int64]
    probed: NDArray[np.int32]
    homes: NDArray[np.int32]
    stored: NDArray[np.int64]
    probes: NDArray[np.int32]


def shares_of(
    probes: NDArray[np.int32], first_row: int, groups: Sequence[NDArray[np.int64]], cells: int
) -> list[Share]:
    """The share of each group of `cells` cells (disjoint, ascending arrays) from the `probes` of the rows
    `first_row, first_row + 1, ...`: how the Ray engine sends each scoring task only what its cells need."""
    group_of = np.full(cells, len(groups), dtype=np.int64)  # a cell in no group goes to a share nobody asks for
    for index, group in enumerate(groups):
        group_of[group] = index
    flat = probes.ravel()
    probing = np.argsort(group_of[flat], kind="stable")  # positions in `flat`, row order kept within a group
    probing_at = np.searchsorted(group_of[flat][probing], np.arange(len(groups) + 1))
    stored = np.argsort(group_of[probes[:, 0]], kind="stable")
    stored_at = np.searchsorted(group_of[probes[:, 0]][stored], np.arange(len(groups) + 1))
    shares = []
    for index in range(len(groups)):
        positions = probing[probing_at[index] : probing_at[index + 1]]
        rows = positions // probes.shape[1]
        kept = stored[stored_at[index] : stored_at[index + 1]]
        shares.append(Share(rows + first_row, flat[positions], probes[rows, 0], kept + first_row, probes[kept]))
    return shares


def cells_of(shares: Sequence[Share], cells: NDArray[np.int64]) -> Iterator[CellRows]:
    """Each of the (ascending) `cells`, as `Cells.cell` gives it, from the shares of every block (in row order)
    of a group holding these cells."""
    probed = np.concatenate([share.probed for share in shares])
    by_cell = np.argsort(probed, kind="stable")
    probing = np.concatenate([share.probing for share in shares])[by_cell]
    homes = np.concatenate([share.homes for share in shares])[by_cell]
    probes = np.concatenate([share.probes for share in shares])
    by_home = np.argsort(probes[:, 0], kind="stable")
    stored, probes = np.concatenate([share.stored for share in shares])[by_home], probes[by_home]
    probing_bounds, stored_bounds = _ranges(probed[by_cell], cells), _ranges(probes[:, 0], cells)
    for (first, last), (low, high) in zip(probing_bounds, stored_bounds, strict=True):
        yield CellRows(probing[first:last], homes[first:last], stored[low:high], probes[low:high])


def _ranges(values: NDArray[np.int32], cells: NDArray[np.int64]) -> list[tuple[int, int]]:
    """Where each of `cells` begins and ends among the sorted `values`."""
    starts, ends = np.searchsorted(values, cells, side="left"), np.searchsorted(values, cells, side="right")
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _kmeans(
    embeddings: Embeddings | RowFile, count: int, params: IvfParams, rng: np.random.Generator, mapper: Mapper
) -> Embeddings:
    """Spherical k-means centroids of a sample of the rows."""
    size = min(len(embeddings), params.sample_per_cell * count)
    sample = embeddings[np.sort(rng.choice(len(embeddings), size, replace=False))]
    centroids = sample[rng.choice(len(sample), count, replace=False)]
    for _ in range(params.iterations):
        cells = _nearest(sample, centroids, 1, mapper)[:, 0]
        order = np.argsort(cells, kind="stable")
        sizes = np.bincount(cells, minlength=count)
        filled = sizes > 0
        sums = np.empty_like(centroids)
        sums[filled] = np.add.reduceat(sample[order], (np.cumsum(sizes) - sizes)[filled], axis=0)
        sums[~filled] = sample[rng.choice(len(sample), int((~filled).sum()))]
        centroids = np.ascontiguousarray(sums / np.linalg.norm(sums, axis=1, keepdims=True), dtype=np.float32)
    return centroids


def _nearest(rows: Embeddings, centroids: Embeddings, count: int, mapper: Mapper) -> NDArray[np.int32]:
    """The `count` nearest centroids of each row, nearest first, a block of rows at a time."""

    def block(start: int) -> NDArray[np.int32]:
        scores = rows[start : start + _BLOCK_ROWS] @ centroids.T
        if count == 1:
            best: NDArray[np.int32] = np.argmax(scores, axis=1).astype(np.int32)[:, None]
            return best
        top = np.argpartition(-scores, count - 1, axis=1)[:, :count]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        return np.take_along_axis(top, order, axis=1).astype(np.int32)

    nearest: NDArray[np.int32] = np.concatenate(list(mapper(block, range(0, len(rows), _BLOCK_ROWS))))
    return nearest


def _bounds(cells: NDArray[np.int32], count: int) -> NDArray[np.int64]:
    return np.concatenate([[0], np.cumsum(np.bincount(cells, minlength=count))]).astype(np.int64)
