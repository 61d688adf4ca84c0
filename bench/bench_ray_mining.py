"""The mining stage alone at scale: local `mine_embeddings(index="ann")` against `--engine ray`'s
`mine_embeddings_ray` on a local Ray (every core), on the same synthetic unit vectors, in one run.

The vectors (`--n` rows of 384 dimensions: noisy copies of `--n / 4` random centres, so that about one row in
six has a neighbour above the threshold) are written once, a block at a time, as the row file that
`--engine ray` mines from (`dupfind.vectors.row_file`). Each engine then runs in a fresh process: the local one
loads the file into memory, as local `mine` holds its vectors; the Ray one mines from the file. Reports each
process's mining wall time (Ray's start not counted) and peak RSS, the busiest Ray worker's peak RSS, and
whether the pairs are identical.

    .venv/bin/python bench/bench_ray_mining.py --n 1000000     # ~4 min on 2 cores
    .venv/bin/python bench/bench_ray_mining.py --n 100000      # ~20 s
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from bench_ray import WorkerPeaks
from peak_rss import peak_rss_kb

RESULTS = Path(__file__).resolve().parent / "results" / "ray_mining.json"
DIM = 384
THRESHOLD = 0.84
BLOCK = 65_536


def synthetic_blocks(n: int, seed: int = 0) -> Iterator[np.ndarray]:
    """`n` unit rows, a block at a time: each a random unit centre (one per 4 rows) plus Gaussian noise of 0.024 per
    dimension, so that two rows of one centre have a cosine of about 0.82, and 17 % of rows a neighbour ≥ 0.84."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(1, n // 4), DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    for start in range(0, n, BLOCK):
        size = min(BLOCK, n - start)
        rows = centres[rng.integers(len(centres), size=size)]
        rows = rows + rng.normal(scale=0.024, size=(size, DIM)).astype(np.float32)
        yield rows / np.linalg.norm(rows, axis=1, keepdims=True)


def child(engine: str, rows: Path, out: Path) -> None:
    """One engine's mining of `rows`, its pairs saved to `out`, its figures printed as one JSON line."""
    from dupfind.pairs.mining import mine_embeddings
    from dupfind.vectors.row_file import RowFile

    started = time.perf_counter()
    if engine == "local":
        pairs = mine_embeddings(np.load(rows), THRESHOLD, index="ann")
    else:
        from dupfind.ray.mine import mine_embeddings_ray
        from dupfind.ray.session import ray_session

        with ray_session():
            started = time.perf_counter()  # Ray's start is not timed
            pairs, _ = mine_embeddings_ray(RowFile(rows), THRESHOLD)
    seconds = time.perf_counter() - started
    np.savez(out, left=pairs.left, right=pairs.right, scores=pairs.scores)
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_kb() / 1e3, "pairs": len(pairs)}))


def measure(engine: str, rows: Path, out: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", engine, "--rows", str(rows), "--pairs", str(out)]
    with WorkerPeaks() as workers:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{engine} mining failed:\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    if engine == "ray":
        figures["busiest_worker_mb"] = workers.busiest_mb
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="rows to mine")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", choices=["local", "ray"], help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--pairs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rows, args.pairs)
        return
    from dupfind.vectors.row_file import write_row_file

    with tempfile.TemporaryDirectory(prefix="bench-ray-mining-") as tmp:
        folder = Path(tmp)
        rows = write_row_file(folder / "rows.npy", args.n, synthetic_blocks(args.n)).path
        result: dict[str, Any] = {"n": args.n, "dim": DIM, "threshold": THRESHOLD}
        for engine in ("local", "ray"):
            result[engine] = measure(engine, rows, folder / f"{engine}.npz")
        local, ray = (np.load(folder / f"{engine}.npz") for engine in ("local", "ray"))
        result["identical"] = all(np.array_equal(local[name], ray[name]) for name in ("left", "right", "scores"))
    print(f"mining {args.n} synthetic rows of {DIM} dimensions at cosine ≥ {THRESHOLD}:")
    for engine in ("local", "ray"):
        figures = result[engine]
        busiest = figures.get("busiest_worker_mb")
        workers = "" if busiest is None else f", busiest Ray worker {busiest:.0f} MB"
        seconds, peak, pairs = figures["seconds"], figures["peak_rss_mb"], figures["pairs"]
        print(f"  {engine:5s} {seconds:7.1f} s {peak:6.0f} MB{workers}, {pairs} pairs")
    ratio = result["ray"]["seconds"] / result["local"]["seconds"]
    print(f"  Ray over local: {ratio:.2f}x wall time; pairs identical: {result['identical']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
