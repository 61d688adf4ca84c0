"""The int8 quality guard: does `--precision int8` find the same duplicates as fp32 on dev data?

Encodes ../shared/data/quora/dev-pairs.csv and dev-questions.csv with the fp32 and the int8 encoder of a
backend (each at its own built-in thresholds, calibrated on train-* only) and checks, with
`dupfind.quality.evaluation.precision_guard`: pair F1 at the pair threshold and AP within 0.3 points of fp32;
mining F1 at the mining threshold within 0.3 points and ≥ 98% of the pairs fp32 mines found; retrieval
nDCG@10 within 0.002. Exits 1 if a check fails.

Also, on the first `--train-limit` rows of train-pairs.csv and train-questions.csv (never dev), the best-F1
pair and mining thresholds of each precision: how far int8's best thresholds are from fp32's. Embeddings go
through the embedding cache (keyed by fingerprint, so the two precisions never mix). Writes
bench/results/precision.json.

    .venv/bin/python bench/bench_precision.py [--backend openvino] [--limit N] [--train-limit 5000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from dupfind.quality.calibration import calibrate_mining, calibrate_pairs
from dupfind.quality.evaluation.labeled import clusters_from_frame, pairs_from_frame
from dupfind.quality.evaluation.pairs import pair_scores
from dupfind.quality.evaluation.precision_guard import judge, quality
from dupfind.thresholds import load_thresholds
from dupfind.vectors.backends import DEFAULT_BACKEND, load_encoder
from dupfind.vectors.cache import EmbeddingCache
from dupfind.vectors.embedder import Embedder
from dupfind.vectors.model import resolve_model

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "quora"
RESULTS = Path(__file__).resolve().parent / "results" / "precision.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=DEFAULT_BACKEND, help="dupfind backend [default: %(default)s]")
    parser.add_argument("--limit", type=int, default=None, help="first N pairs and questions only")
    parser.add_argument("--train-limit", type=int, default=5000, help="train pairs and questions to calibrate on")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not (DATA / "dev-pairs.csv").is_file():
        print(f"skipped: {DATA} is not here")
        return
    pairs = pairs_from_frame("dev-pairs.csv", pd.read_csv(DATA / "dev-pairs.csv", nrows=args.limit))
    clusters = clusters_from_frame("dev-questions.csv", pd.read_csv(DATA / "dev-questions.csv", nrows=args.limit))
    train_pairs = pairs_from_frame("train-pairs.csv", pd.read_csv(DATA / "train-pairs.csv", nrows=args.train_limit))
    train_clusters = clusters_from_frame(
        "train-questions.csv", pd.read_csv(DATA / "train-questions.csv", nrows=args.train_limit)
    )
    ref = resolve_model(None)
    figures, embeddings, seconds, best = {}, {}, {}, {}
    for precision in ("fp32", "int8"):
        started = time.perf_counter()
        embedder = Embedder(load_encoder(None, args.backend, precision), EmbeddingCache())
        best[precision] = {
            "pair": calibrate_pairs(pair_scores(embedder, train_pairs), train_pairs.labels, "train").threshold,
            "mining": calibrate_mining(
                embedder.embed(train_clusters.texts), train_clusters.clusters, "train"
            ).threshold,
        }
        embeddings[precision] = embedder.embed(clusters.texts)
        scores = pair_scores(embedder, pairs)
        seconds[precision] = time.perf_counter() - started
        at = load_thresholds(ref, precision)
        figures[precision] = quality(scores, pairs.labels, embeddings[precision], clusters.clusters, at)
    thresholds = (load_thresholds(ref, "fp32"), load_thresholds(ref, "int8"))
    guard = judge(figures["fp32"], figures["int8"], embeddings["fp32"], embeddings["int8"], thresholds)
    print(
        f"best-F1 thresholds on {len(train_pairs.labels)} train pairs and {len(train_clusters.texts)} train questions:"
    )
    for kind in ("pair", "mining"):
        shift = best["int8"][kind] - best["fp32"][kind]
        print(f"  {kind:7s} fp32 {best['fp32'][kind]:.4f}  int8 {best['int8'][kind]:.4f}  int8 - fp32 {shift:+.4f}")
    print(f"{len(pairs.labels)} dev pairs, {len(clusters.texts)} dev questions, backend {args.backend}")
    print(f"{'':22s} {'fp32':>8s} {'int8':>8s} {'change':>8s}")
    for name, value in asdict(guard.reference).items():
        other = getattr(guard.candidate, name)
        print(f"{name:22s} {value:8.4f} {other:8.4f} {other - value:+8.4f}")
    print(f"fp32 mined pairs found by int8: {guard.pairs_kept:.2%}")
    for check, passed in guard.checks.items():
        print(f"{check:22s} {'pass' if passed else 'FAIL'}")
    result = {
        "backend": args.backend,
        "pairs": len(pairs.labels),
        "questions": len(clusters.texts),
        "train_rows": {"pairs": len(train_pairs.labels), "questions": len(train_clusters.texts)},
        "train_best_thresholds": best,
        "thresholds": {precision: asdict(at) for precision, at in zip(("fp32", "int8"), thresholds, strict=True)},
        "fp32": asdict(guard.reference),
        "int8": asdict(guard.candidate),
        "pairs_kept": guard.pairs_kept,
        "checks": guard.checks,
        "passed": guard.passed,
        "encode_seconds": seconds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    sys.exit(0 if guard.passed else 1)


if __name__ == "__main__":
    main()
