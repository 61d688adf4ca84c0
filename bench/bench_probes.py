"""How many cells each row of the inverted-file index must probe, at the mining thresholds that ship.

The distinct questions of ../shared/data/quora/train-questions.csv (never dev), encoded with the built-in model
through the embedding cache (the first run encodes them), are mined exactly (the reference: every pair at or above
the threshold, each row keeping its best `--top-k`) and then with the index of `dupfind.pairs.ann` probing 2, 3, 4,
6, 8, 12, 16 and 24 cells per row (the cells as `IvfParams` makes them). For each: the share of the exact pairs it
finds (recall), the rows compared per row (the scoring's work, ∝ probes), the bytes of probe lists that the Ray
engine moves per row (8 per probe: the row's id in each probed cell's list, plus 4 for the probe), and the wall
time of partitioning and scoring, in one run. Thresholds: the `quora` model's mining threshold and its re-ranker's
candidate cosine (both from the shipped `dupfind.json`), unless `--thresholds` says otherwise. Writes
bench/results/probes.json.

    .venv/bin/python bench/bench_probes.py [--thresholds 0.8276,0.80] [--probes 2,4,8,24]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from dupfind import Embedder, EmbeddingCache, load_encoder
from dupfind.pairs import ann
from dupfind.pairs.identical import normalize_text
from dupfind.pairs.mining import DEFAULT_TOP_K, mine_embeddings, score_cell, top_k_pairs
from dupfind.vectors.model import SHIPPED_MODELS_DIR

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "quora"
RESULTS = Path(__file__).resolve().parent / "results" / "probes.json"
PROBES = (2, 3, 4, 6, 8, 12, 16, 24)


def train_embeddings() -> np.ndarray:
    texts: dict[str, str] = {}
    for text in pd.read_csv(DATA / "train-questions.csv").question.dropna().astype(str):
        texts.setdefault(normalize_text(text), text)
    embeddings: np.ndarray = Embedder(load_encoder(), EmbeddingCache()).embed(list(texts.values()))
    return embeddings


def shipped_thresholds() -> list[float]:
    """The `quora` model's mining threshold and its re-ranker's candidate cosine."""
    quora = json.loads((SHIPPED_MODELS_DIR / "quora" / "dupfind.json").read_text(encoding="utf-8"))
    reranker = json.loads((SHIPPED_MODELS_DIR / "quora-reranker" / "dupfind.json").read_text(encoding="utf-8"))
    candidates = next(iter(reranker["rerank"]["candidates"].values()))["mining"]
    return [round(float(quora["mining_threshold"]), 4), float(candidates)]


def pair_set(left: np.ndarray, right: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(np.minimum(left, right).tolist(), np.maximum(left, right).tolist(), strict=True))


def mine_with_probes(embeddings: np.ndarray, threshold: float, top_k: int, probes: int) -> dict[str, Any]:
    """Partition and score as `dupfind.pairs.mining` does, with `probes` probes per row (one thread: the same
    work on every run)."""
    params = ann.IvfParams(probes=probes)
    with threadpool_limits(limits=1, user_api="blas"):
        started = time.perf_counter()
        cells = ann.partition(embeddings, params)
        partitioned = time.perf_counter()
        hits = [score_cell(embeddings, cells.cell(index), threshold) for index in range(len(cells))]
        pairs, _ = top_k_pairs(hits, top_k)
        scored = time.perf_counter()
    stored = np.diff(cells.stored_at)
    probing = np.diff(cells.probing_at)
    return {
        "pairs": pair_set(pairs.left, pairs.right),
        "cells": len(cells),
        "compared_per_row": float((stored * probing).sum() / len(embeddings)),
        "probe_bytes_per_row": 12 * probes,
        "partition_s": partitioned - started,
        "score_s": scored - partitioned,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thresholds", default=None, help="comma-separated cosines [the shipped ones]")
    parser.add_argument("--probes", default=",".join(map(str, PROBES)))
    parser.add_argument("--top-k", type=int, default=DEFAULT_TOP_K)
    parser.add_argument("--rows", default=None, help="comma-separated corpus sizes, nested random subsets [all]")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is not here")
        return
    thresholds = [float(t) for t in args.thresholds.split(",")] if args.thresholds else shipped_thresholds()
    every = np.ascontiguousarray(train_embeddings(), dtype=np.float32)
    order = np.random.default_rng(0).permutation(len(every))
    sizes = [int(n) for n in args.rows.split(",")] if args.rows else [len(every)]
    report: dict[str, Any] = {"cpu": platform.processor() or platform.machine(), "runs": []}
    for rows, threshold in ((rows, threshold) for rows in sizes for threshold in thresholds):
        embeddings = every[np.sort(order[:rows])]
        print(f"{len(embeddings)} distinct train questions, top-{args.top_k}")
        exact = mine_embeddings(embeddings, threshold, args.top_k, index="exact")
        reference = pair_set(exact.left, exact.right)
        print(f"threshold {threshold}: {len(reference)} exact pairs")
        for probes in (int(p) for p in args.probes.split(",")):
            run = mine_with_probes(embeddings, threshold, args.top_k, probes)
            found = run.pop("pairs")
            run.update(
                rows=len(embeddings),
                threshold=threshold,
                probes=probes,
                exact_pairs=len(reference),
                recall=len(found & reference) / max(1, len(reference)),
                extra=len(found - reference),
            )
            report["runs"].append(run)
            missed = run["exact_pairs"] - len(found & reference)
            print(
                f"  probes {probes:2d}: recall {100 * run['recall']:.3f}% ({missed} missed, {run['extra']} extra), "
                f"{run['compared_per_row']:.0f} rows compared per row, "
                f"{run['probe_bytes_per_row']} probe bytes per row, partition {run['partition_s']:.2f} s, "
                f"score {run['score_s']:.2f} s",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
