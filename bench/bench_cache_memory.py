"""Peak memory of the embedding cache: merging many shards into one, then looking every row up.

N random 384-dim unit rows are stored as shards of 4,096 rows (as the Ray engine's actors store them, without
merging), then `compact` merges them and `lookup` reads every row back. Each stage runs in a fresh process, so
its peak RSS (VmHWM, which counts the pages touched through memory maps too) and time are its own; reported against the
bytes of the rows (N x 384 x 4), which `lookup` must return. Writes bench/results/cache_memory.json.

    .venv/bin/python bench/bench_cache_memory.py [--rows 200000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from peak_rss import peak_rss_kb

from dupfind.vectors.cache import EmbeddingCache

RESULTS = Path(__file__).resolve().parent / "results" / "cache_memory.json"
DIM = 384
SHARD_ROWS = 4096
FINGERPRINT = "bench"


def keys_of(rows: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 2**63, (rows, 2)).astype(np.uint64)


def stage(name: str, root: Path, rows: int) -> None:
    """One stage in this process; prints its seconds and its peak RSS in MB."""
    cache = EmbeddingCache(root)
    started = time.perf_counter()
    if name == "store":
        rng, keys = np.random.default_rng(1), keys_of(rows)
        for start in range(0, rows, SHARD_ROWS):
            block = rng.standard_normal((min(SHARD_ROWS, rows - start), DIM)).astype(np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            cache.store(FINGERPRINT, keys[start : start + SHARD_ROWS], block, compact=False)
    elif name == "compact":
        cache.compact(FINGERPRINT)
    else:
        found = cache.lookup(FINGERPRINT, keys_of(rows))[1]
        assert found.all()
    print(time.perf_counter() - started, peak_rss_kb() / 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--stage", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.stage is not None:
        stage(args.stage, args.root, args.rows)
        return
    data_mb = args.rows * DIM * 4 / 1e6
    result: dict[str, float] = {"rows": args.rows, "rows_mb": data_mb}
    with tempfile.TemporaryDirectory() as folder:
        for name in ("store", "compact", "lookup"):
            command = [sys.executable, __file__, "--stage", name, "--root", folder, "--rows", str(args.rows)]
            seconds, peak = map(float, subprocess.check_output(command, text=True).split()[-2:])
            result[f"{name}_peak_mb"], result[f"{name}_seconds"] = peak, seconds
            print(f"{name:8s} peak RSS {peak:7.0f} MB ({peak / data_mb:.2f}x the rows), {seconds:.2f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
