"""`dupfind mine --engine ray` on a local Ray (every core of this machine) against local `dupfind mine`, in one run.

1. 100k questions (the augmentation of bench_e2e.py): local `mine` (first run, empty embedding cache), then
   `mine --engine ray` (first run, empty work folder: starts Ray, reads, encodes, mines, stops Ray), then the
   Ray run again (embeddings read back from the work folder). Reports Ray's overhead over the local wall
   time, the re-run's speed-up, how the two engines' pairs agree, and the peak RSS of the driver and of the
   busiest Ray worker process.
2. ../shared/data/quora/dev-questions.csv: the pairs of `--engine ray` against local `mine --index exact`
   at the default threshold (share of the exact pairs found, largest score difference, pairs not found).
3. The same file with `--rerank`: local `mine --rerank` against `--engine ray --rerank` (embeddings already
   cached by part 2 on both sides, so both time the mining and re-ranking), then the Ray run again (scores
   read back from the work folder); the kept pairs and their re-rank scores compared.

Each run is a fresh `dupfind -v` process with `DUPFIND_CACHE_DIR` in a temporary folder (the model exported
there first). Writes bench/results/ray.json.

    .venv/bin/python bench/bench_ray.py               # ~20 min on 2 cores (AMD EPYC, AVX2)
    .venv/bin/python bench/bench_ray.py --n 20000     # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import pandas as pd
from bench_e2e import DATA, questions, real_questions, run, warm_up
from peak_rss import peak_rss_kb

RESULTS = Path(__file__).resolve().parent / "results" / "ray.json"


def pair_agreement(
    found: Path, reference: Path, threshold: float | None = None, column: str = "score"
) -> dict[str, Any]:
    """How the pairs of `found` agree with those of `reference` (matched by their ids), `column` compared."""
    ours = pd.read_parquet(found).set_index(["id_a", "id_b"])[column]
    theirs = pd.read_parquet(reference).set_index(["id_a", "id_b"])[column]
    common = ours.index.intersection(theirs.index)
    return {
        "pairs": len(ours),
        "reference_pairs": len(theirs),
        "found_share": len(common) / max(1, len(theirs)),
        "missed": len(theirs) - len(common),
        "extra": len(ours) - len(common),
        "extra_below_threshold": None if threshold is None else int((ours.drop(common) < threshold).sum()),
        "max_score_difference": float((ours[common] - theirs[common]).abs().max()) if len(common) else 0.0,
    }


class WorkerPeaks:
    """While open, samples the peak RSS (VmHWM) of every Ray worker process (its command line starts `ray::`: the
    actors and tasks) every `every` seconds, by pid in `peaks`; `busiest_mb` is the largest."""

    def __init__(self, every: float = 0.25) -> None:
        self.every = every
        self.peaks: dict[str, int] = {}  # kB, by pid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> WorkerPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def busiest_mb(self) -> float:
        return max(self.peaks.values(), default=0) / 1e3

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as file:
                        if not file.read(5).startswith(b"ray::"):
                            continue
                    peak = peak_rss_kb(entry.name)
                except (OSError, TypeError):
                    continue  # the process ended
                self.peaks[entry.name] = max(peak, self.peaks.get(entry.name, 0))


def run_on_ray(args: list[str], cache: Path, log: Path) -> dict[str, Any]:
    """`run`, with the peak RSS of the busiest Ray worker process and how many there were."""
    with WorkerPeaks() as workers:
        result = run(args, cache, log)
    return result | {"busiest_worker_mb": workers.busiest_mb, "worker_processes": len(workers.peaks)}


def bench_100k(n: int, real: list[str], folder: Path, backend: list[str]) -> dict[str, Any]:
    file = folder / f"questions-{n}.csv"
    pd.DataFrame({"id": range(1, n + 1), "question": questions(n, real)}).to_csv(file, index=False)
    cache, log, work = folder / "cache", folder / "stderr.txt", folder / "work"
    warm_up(cache, backend)
    result: dict[str, Any] = {"n": n}
    result["local"] = run(["mine", str(file), "-o", str(folder / "local.parquet"), *backend], cache, log)
    ray_args = ["mine", str(file), "--engine", "ray", "--work-dir", str(work), *backend]
    result["ray"] = run_on_ray([*ray_args, "-o", str(folder / "ray.parquet")], cache, log)
    result["ray_rerun"] = run_on_ray([*ray_args, "-o", str(folder / "ray-rerun.parquet")], cache, log)
    result["ray_overhead"] = result["ray"]["seconds"] / result["local"]["seconds"] - 1
    result["rerun_speedup"] = result["ray"]["seconds"] / result["ray_rerun"]["seconds"]
    result["pairs_vs_local"] = pair_agreement(folder / "ray.parquet", folder / "local.parquet")
    for name in ("local", "ray", "ray_rerun"):
        figures = result[name]
        stages = ", ".join(figures["stages"])
        busiest = figures.get("busiest_worker_mb")
        workers = "" if busiest is None else f", busiest Ray worker {busiest:.0f} MB"
        print(f"  {name:10s} {figures['seconds']:7.1f} s {figures['peak_rss_mb']:6.0f} MB{workers} ({stages})")
    overhead, speedup = 100 * result["ray_overhead"], result["rerun_speedup"]
    print(f"  Ray overhead {overhead:+.1f}% of the local wall time; re-run {speedup:.1f}x faster")
    print(f"  pairs vs local mine: {result['pairs_vs_local']}")
    return result


def bench_dev(folder: Path, backend: list[str]) -> dict[str, Any]:
    file = DATA / "dev-questions.csv"
    cache, log = folder / "cache-dev", folder / "stderr.txt"
    warm_up(cache, backend)
    exact = folder / "dev-exact.parquet"
    run(["mine", str(file), "--index", "exact", "-o", str(exact), *backend], cache, log)
    threshold = float(
        next(line for line in log.read_text().splitlines() if "pairs with cosine" in line).split("≥ ")[1].split()[0]
    )
    on_ray = folder / "dev-ray.parquet"
    work = ["--work-dir", str(folder / "work-dev")]
    run(["mine", str(file), "--engine", "ray", *work, "-o", str(on_ray), *backend], cache, log)
    result = {"file": str(file), "threshold": threshold, **pair_agreement(on_ray, exact, threshold)}
    print(f"  dev-questions.csv, --engine ray vs local --index exact: {result}")
    return result


def bench_dev_rerank(folder: Path, backend: list[str]) -> dict[str, Any]:
    """Part 3; after `bench_dev`, whose cache and work folder hold the embeddings."""
    file = DATA / "dev-questions.csv"
    cache, log = folder / "cache-dev", folder / "stderr.txt"
    local, on_ray, again = (folder / f"dev-rerank-{name}.parquet" for name in ("local", "ray", "ray-rerun"))
    result: dict[str, Any] = {"local": run(["mine", str(file), "--rerank", "-o", str(local), *backend], cache, log)}
    ray_args = ["mine", str(file), "--rerank", "--engine", "ray", "--work-dir", str(folder / "work-dev"), *backend]
    result["ray"] = run([*ray_args, "-o", str(on_ray)], cache, log)
    result["ray_rerun"] = run([*ray_args, "-o", str(again)], cache, log)
    result["pairs_vs_local"] = pair_agreement(on_ray, local, column="rerank_score")
    result["rerun_vs_first"] = pair_agreement(again, on_ray, column="rerank_score")
    for name in ("local", "ray", "ray_rerun"):
        figures = result[name]
        print(f"  --rerank {name:10s} {figures['seconds']:7.1f} s ({', '.join(figures['stages'])})")
    print(f"  --engine ray --rerank vs local mine --rerank: {result['pairs_vs_local']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="questions of the timed runs")
    parser.add_argument("--backend", default=None, help="--backend of dupfind mine")
    parser.add_argument("--skip-timed", action="store_true", help="skip part 1 (the runs of --n questions)")
    parser.add_argument("--skip-dev", action="store_true", help="skip parts 2 and 3 (dev-questions.csv)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is not here")
        return
    backend = ["--backend", args.backend] if args.backend else []
    report: dict[str, Any] = {"cores": len(os.sched_getaffinity(0))}
    with tempfile.TemporaryDirectory(prefix="dupfind-ray-") as folder:
        if not args.skip_timed:
            print(f"dupfind mine, {args.n} questions, local vs --engine ray:")
            report["timed"] = bench_100k(args.n, real_questions(), Path(folder), backend)
            write(args.out, report)
        if not args.skip_dev:
            report["dev"] = bench_dev(Path(folder), backend)
            write(args.out, report)
            report["dev_rerank"] = bench_dev_rerank(Path(folder), backend)
            write(args.out, report)


def write(out: Path, report: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
