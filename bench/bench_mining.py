"""Mining n embeddings: dupfind exact and ann against sentence-transformers' `paraphrase_mining_embeddings`
(and faiss `IndexFlatIP` when faiss is importable), wall and CPU time, peak RSS, and pair recall.

Embeddings: the distinct questions of ../shared/data/quora/{train,dev}-questions.csv (95,909) encoded with
the built-in model through the embedding cache (the first run encodes them: minutes; later runs read
them), or `--embeddings FILE.npy`. Sizes beyond the real rows are reached deterministically: row
`k ≥ R` is row `k mod R` plus Gaussian noise (σ = 0.03 per component, seed 0), renormalised (cosine ≈ 0.86
to its source). Each method runs in its own process, so that its peak RSS is its own; "extra RSS" is the
peak minus the RSS after loading the embeddings and imports. Every method keeps the best `--top-k`
neighbours per row; recall = share of the reference's pairs at or above the threshold that it finds.
Writes bench/results/mining.json.

    .venv/bin/python bench/bench_mining.py [--sizes 10000,100000] [--methods exact,ann,st,faiss]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "quora"
RESULTS = Path(__file__).resolve().parent / "results" / "mining.json"
METHODS = ("exact", "ann", "st", "faiss")
NAMES = {
    "exact": "dupfind exact",
    "ann": "dupfind ann",
    "st": "sentence-transformers paraphrase_mining_embeddings",
    "faiss": "faiss IndexFlatIP",
}
NOISE = 0.03
THRESHOLD = 0.744  # the threshold; the calibrated default is higher, with fewer and nearer pairs


def real_embeddings(backend: str | None) -> np.ndarray:
    """The distinct real questions, encoded with the built-in model through the embedding cache."""
    from dupfind.pairs.identical import normalize_text
    from dupfind.vectors.backends import load_encoder
    from dupfind.vectors.cache import EmbeddingCache
    from dupfind.vectors.embedder import Embedder

    texts: dict[str, str] = {}
    for name in ("train", "dev"):
        for text in pd.read_csv(DATA / f"{name}-questions.csv").question.dropna().astype(str):
            texts.setdefault(normalize_text(text), text)
    return Embedder(load_encoder(None, backend), EmbeddingCache()).embed(list(texts.values()))


def scaled(real: np.ndarray, n: int) -> np.ndarray:
    """`n` rows: the real ones, then noisy renormalised copies of them (deterministic)."""
    if n <= len(real):
        return real[:n]
    rng = np.random.default_rng(0)
    copies = real[np.arange(len(real), n) % len(real)] + rng.normal(0, NOISE, (n - len(real), real.shape[1]))
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    return np.concatenate([real, copies.astype(np.float32)])


def memory_mb(field: str) -> float:
    """`VmRSS` (now) or `VmHWM` (peak) of this process. Not `ru_maxrss`, which a child inherits from the
    parent that spawned it."""
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) / 1e3 for line in handle if line.startswith(f"{field}:"))


def run_method(method: str, embeddings_file: Path, pairs_file: Path, threshold: float, top_k: int) -> dict[str, Any]:
    """Mine in this process (a child of the bench); the pairs go to `pairs_file`, the figures are returned."""
    embeddings = np.load(embeddings_file, allow_pickle=False)
    if method in ("exact", "ann"):
        from dupfind.pairs.mining import mine_embeddings

        def mine() -> tuple[np.ndarray, np.ndarray]:
            mined = mine_embeddings(embeddings, threshold, top_k, index=method)
            return mined.left, mined.right

    elif method == "st":
        import torch
        from sentence_transformers.util import paraphrase_mining_embeddings

        torch.set_num_threads(len(os.sched_getaffinity(0)))
        tensor = torch.from_numpy(embeddings)

        def mine() -> tuple[np.ndarray, np.ndarray]:
            found = paraphrase_mining_embeddings(tensor, top_k=top_k, max_pairs=len(embeddings) * top_k)
            kept = np.array([(i, j) for score, i, j in found if score >= threshold], dtype=np.int64).reshape(-1, 2)
            return kept[:, 0], kept[:, 1]

    else:
        import faiss

        def mine() -> tuple[np.ndarray, np.ndarray]:
            index = faiss.IndexFlatIP(embeddings.shape[1])
            index.add(embeddings)
            scores, neighbours = index.search(embeddings, top_k + 1)
            rows = np.repeat(np.arange(len(embeddings)), top_k + 1).reshape(neighbours.shape)
            keep = (scores >= threshold) & (neighbours != rows) & (neighbours >= 0)
            return rows[keep], neighbours[keep]

    before = memory_mb("VmRSS")
    started, cpu = time.perf_counter(), time.process_time()
    left, right = mine()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    peak = memory_mb("VmHWM")
    np.save(pairs_file, np.stack([np.minimum(left, right), np.maximum(left, right)], axis=1).astype(np.int64))
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_mb": peak, "extra_rss_mb": peak - before}


def pairs_of(file: Path) -> set[tuple[int, int]]:
    return set(map(tuple, np.load(file, allow_pickle=False).tolist()))


def recall(found: set[tuple[int, int]], reference: set[tuple[int, int]]) -> float:
    return len(found & reference) / max(len(reference), 1)


def bench_size(real: np.ndarray, n: int, methods: list[str], args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    embeddings_file = folder / f"embeddings-{n}.npy"
    np.save(embeddings_file, scaled(real, n))
    figures: dict[str, dict[str, Any]] = {}
    for method in methods:
        pairs_file = folder / f"pairs-{n}-{method}.npy"
        command = [sys.executable, __file__, "--child", method, str(embeddings_file), str(pairs_file)]
        command += ["--threshold", str(args.threshold), "--top-k", str(args.top_k)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"  {NAMES[method]}: failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        figures[method] = json.loads(done.stdout.strip().splitlines()[-1]) | {"pairs": pairs_of(pairs_file)}
    exact = figures.get("exact", {}).get("pairs", set())
    st = figures.get("st", {}).get("pairs")
    base = figures.get("st")
    rows = {}
    for method, figure in figures.items():
        row = {key: value for key, value in figure.items() if key != "pairs"}
        row["pairs"] = len(figure["pairs"])
        row["recall_vs_exact"] = recall(figure["pairs"], exact)
        if st is not None:
            row["recall_vs_st"] = recall(figure["pairs"], st)
        if base is not None:
            row["speedup_vs_st"] = base["seconds"] / figure["seconds"]
            row["cpu_speedup_vs_st"] = base["cpu_seconds"] / figure["cpu_seconds"]
        rows[NAMES[method]] = row
        print(
            f"  {NAMES[method]:52s} {row['seconds']:8.2f} s {row['cpu_seconds']:8.2f} s cpu "
            f"{row['peak_rss_mb']:7.0f} MB peak {row['extra_rss_mb']:7.0f} MB extra {row['pairs']:8d} pairs "
            f"recall vs exact {row['recall_vs_exact']:.5f}"
            + (f", vs st {row['recall_vs_st']:.5f}, {row['speedup_vs_st']:.1f}x st" if st is not None else "")
        )
    return {"n": n, "real_rows": min(n, len(real)), "methods": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated numbers of embeddings")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"some of {', '.join(METHODS)}")
    parser.add_argument("--threshold", type=float, default=THRESHOLD)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--backend", default=None, help="encoder backend for the real embeddings")
    parser.add_argument("--embeddings", type=Path, help="use these real embeddings (.npy) instead")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        method, embeddings_file, pairs_file = args.child
        print(json.dumps(run_method(method, Path(embeddings_file), Path(pairs_file), args.threshold, args.top_k)))
        return
    if args.embeddings is None and not DATA.is_dir():
        print(f"skipped: {DATA} is not here")
        return
    methods = [method for method in args.methods.split(",") if method != "faiss" or _has_faiss()]
    real = np.load(args.embeddings, allow_pickle=False) if args.embeddings else real_embeddings(args.backend)
    results = []
    with tempfile.TemporaryDirectory(prefix="dupfind-bench-") as folder:
        for n in map(int, args.sizes.split(",")):
            print(f"n = {n} ({min(n, len(real))} real), threshold {args.threshold}, top-k {args.top_k}:")
            results.append(bench_size(real, n, methods, args, Path(folder)))
    report = {"threshold": args.threshold, "top_k": args.top_k, "cores": len(os.sched_getaffinity(0)), "sizes": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


def _has_faiss() -> bool:
    done = subprocess.run([sys.executable, "-c", "import faiss"], capture_output=True, check=False)
    return done.returncode == 0


if __name__ == "__main__":
    main()
