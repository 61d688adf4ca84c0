"""What one scoring task of `--engine ray` receives of the probes, and allocates to list its cells, as the cluster
grows: the probes of every row (what each task received before `ann.shares_of`) against its group's shares.

The synthetic rows of `bench_ray_mining.py` are partitioned as `--engine ray` partitions them (the same
centroids, probes and equal-work groups, `--tasks` groups: 4 per CPU of the cluster); for each group count, the
largest group's shares are built from blocks of 65,536 rows, and `ann.cells_of` lists its cells under
`tracemalloc` (numpy reports its arrays to it).

    .venv/bin/python bench/bench_probe_shares.py --n 1000000 --tasks 8,64,512    # ~2 min on 2 cores
"""

from __future__ import annotations

import argparse
import tracemalloc

import numpy as np
from bench_ray_mining import synthetic_blocks

from dupfind.pairs import ann
from dupfind.ray.mine import ASSIGN_ROWS, cell_groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--tasks", default="8,64,512", help="group counts, comma-separated")
    args = parser.parse_args()
    rows = np.concatenate(list(synthetic_blocks(args.n)))
    params = ann.IvfParams()
    centroids = ann.train_centroids(rows, params)
    probes = ann.nearest_cells(rows, centroids, min(params.probes, len(centroids)))
    cells = len(centroids)
    work = np.bincount(probes.ravel(), minlength=cells) * np.bincount(probes[:, 0], minlength=cells)
    size = probes.nbytes / 1e6
    print(f"{args.n:,} rows, {cells:,} cells, {probes.shape[1]} probes per row: all the probes {size:.0f} MB")
    for tasks in (int(count) for count in args.tasks.split(",")):
        groups = cell_groups(work, tasks)
        largest = int(np.argmax([work[group].sum() for group in groups]))
        shares = [
            ann.shares_of(probes[start : start + ASSIGN_ROWS], start, groups, cells)[largest]
            for start in range(0, args.n, ASSIGN_ROWS)
        ]
        received = sum(array.nbytes for share in shares for array in vars(share).values())
        tracemalloc.start()
        listed = sum(len(cell.stored) for cell in ann.cells_of(shares, groups[largest]))
        listing = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert listed == np.isin(probes[:, 0], groups[largest]).sum()
        print(
            f"  {len(groups):4d} groups: the largest group's task receives {received / 1e6:6.1f} MB of probes "
            f"({received / probes.nbytes:.1%} of all), listing its {len(groups[largest])} cells allocates "
            f"{listing / 1e6:6.1f} MB"
        )


if __name__ == "__main__":
    main()
