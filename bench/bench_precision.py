"""The quality guard of a lower precision: does `--precision int8` (or bf16) find the same duplicates as fp32?

Encodes ../shared/data/quora/dev-pairs.csv and dev-questions.csv (`--split train`: train-pairs.csv and
train-questions.csv, to decide what `--precision auto` chooses without looking at dev) with the fp32 and the
candidate encoder of a backend (each at its own built-in thresholds, calibrated on train-* only) and checks, with
`dupfind.quality.evaluation.precision_guard`: pair F1 at the pair threshold and AP within 0.3 points of fp32;
mining F1 at the mining threshold within 0.3 points and ≥ 98% of the pairs fp32 mines found; retrieval
nDCG@10 within 0.002; prints the candidate's lowest cosine to fp32 over the guard's questions. Exits 1 if a
check fails.

Also, on the first `--train-limit` rows of train-pairs.csv and train-questions.csv (never dev), the best-F1
pair and mining thresholds of each precision: how far the candidate's best thresholds are from fp32's.
`--shifted`: the candidate is judged at its built-in thresholds moved by that shift where it is over 0.002
(what calibrating it on train would store). Embeddings go through the embedding cache (keyed by fingerprint,
so the precisions never mix). Writes bench/results/precision-<candidate>-<split>.json.

    .venv/bin/python bench/bench_precision.py [--candidate int8|bf16] [--split dev|train] [--limit N]
        [--train-limit 5000] [--shifted] [--backend openvino]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from dupfind.quality.calibration import calibrate_mining, calibrate_pairs
from dupfind.quality.evaluation.labeled import clusters_from_frame, pairs_from_frame
from dupfind.quality.evaluation.pairs import pair_scores
from dupfind.quality.evaluation.precision_guard import judge, quality
from dupfind.thresholds import Thresholds, load_thresholds
from dupfind.vectors.backends import DEFAULT_BACKEND, load_encoder
from dupfind.vectors.cache import EmbeddingCache
from dupfind.vectors.embedder import Embedder
from dupfind.vectors.model import resolve_model
from dupfind.vectors.precision import cpu_features

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "quora"
RESULTS = Path(__file__).resolve().parent / "results"
SHIFT_TOLERANCE = 0.002  # a precision gets thresholds of its own when its best ones are further than this from fp32's


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=DEFAULT_BACKEND, help="dupfind backend [default: %(default)s]")
    parser.add_argument("--candidate", choices=("int8", "bf16"), default="int8", help="[default: %(default)s]")
    parser.add_argument("--split", choices=("dev", "train"), default="dev", help="the guard's data [default: dev]")
    parser.add_argument("--limit", type=int, default=None, help="first N pairs and questions only")
    parser.add_argument("--train-limit", type=int, default=5000, help="train pairs and questions to calibrate on")
    parser.add_argument("--shifted", action="store_true", help="judge the candidate at its train-shifted thresholds")
    parser.add_argument(
        "--out", type=Path, default=None, help="[default: bench/results/precision-CANDIDATE-SPLIT.json]"
    )
    args = parser.parse_args()
    candidate, split = args.candidate, args.split
    if not (DATA / f"{split}-pairs.csv").is_file():
        print(f"skipped: {DATA} is not here")
        return
    flags = sorted(cpu_features() & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16"})
    print(f"CPU flags: {' '.join(flags) or 'none of avx2, avx512f, VNNI, bf16, AMX'}")
    pairs = pairs_from_frame(f"{split}-pairs.csv", pd.read_csv(DATA / f"{split}-pairs.csv", nrows=args.limit))
    questions = pd.read_csv(DATA / f"{split}-questions.csv", nrows=args.limit)
    clusters = clusters_from_frame(f"{split}-questions.csv", questions)
    train_pairs = pairs_from_frame("train-pairs.csv", pd.read_csv(DATA / "train-pairs.csv", nrows=args.train_limit))
    train_clusters = clusters_from_frame(
        "train-questions.csv", pd.read_csv(DATA / "train-questions.csv", nrows=args.train_limit)
    )
    ref = resolve_model(None)
    figures, embeddings, seconds, best, scores_of = {}, {}, {}, {}, {}
    for precision in ("fp32", candidate):
        started = time.perf_counter()
        embedder = Embedder(load_encoder(None, args.backend, precision), EmbeddingCache())
        best[precision] = {
            "pair": calibrate_pairs(pair_scores(embedder, train_pairs), train_pairs.labels, "train").threshold,
            "mining": calibrate_mining(
                embedder.embed(train_clusters.texts), train_clusters.clusters, "train"
            ).threshold,
        }
        embeddings[precision] = embedder.embed(clusters.texts)
        scores_of[precision] = pair_scores(embedder, pairs)
        seconds[precision] = time.perf_counter() - started
    thresholds = (
        load_thresholds(ref, "fp32"),
        _thresholds(load_thresholds(ref, candidate), best, candidate, args.shifted),
    )
    for precision, at in zip(("fp32", candidate), thresholds, strict=True):
        figures[precision] = quality(scores_of[precision], pairs.labels, embeddings[precision], clusters.clusters, at)
    guard = judge(figures["fp32"], figures[candidate], embeddings["fp32"], embeddings[candidate], thresholds)
    min_cosine = float(np.min(np.sum(embeddings["fp32"] * embeddings[candidate], axis=1)))
    print(
        f"best-F1 thresholds on {len(train_pairs.labels)} train pairs and {len(train_clusters.texts)} train questions:"
    )
    for kind in ("pair", "mining"):
        shift = best[candidate][kind] - best["fp32"][kind]
        print(
            f"  {kind:7s} fp32 {best['fp32'][kind]:.4f}  {candidate} {best[candidate][kind]:.4f}  "
            f"{candidate} - fp32 {shift:+.4f}"
        )
    print(f"{len(pairs.labels)} {split} pairs, {len(clusters.texts)} {split} questions, backend {args.backend}")
    print(f"{candidate} at pair {thresholds[1].pair:.4f}, mining {thresholds[1].mining:.4f}")
    print(f"{'':22s} {'fp32':>8s} {candidate:>8s} {'change':>8s}")
    for name, value in asdict(guard.reference).items():
        other = getattr(guard.candidate, name)
        print(f"{name:22s} {value:8.4f} {other:8.4f} {other - value:+8.4f}")
    print(f"fp32 mined pairs found by {candidate}: {guard.pairs_kept:.2%}; lowest cosine to fp32 {min_cosine:.6f}")
    for check, passed in guard.checks.items():
        print(f"{check:22s} {'pass' if passed else 'FAIL'}")
    print(f"encode seconds (calibration slice and guard data): {', '.join(f'{k} {v:.0f}' for k, v in seconds.items())}")
    result = {
        "cpu_flags": flags,
        "candidate": candidate,
        "split": split,
        "shifted": args.shifted,
        "min_cosine_to_fp32": min_cosine,
        "backend": args.backend,
        "pairs": len(pairs.labels),
        "questions": len(clusters.texts),
        "train_rows": {"pairs": len(train_pairs.labels), "questions": len(train_clusters.texts)},
        "train_best_thresholds": best,
        "thresholds": {precision: asdict(at) for precision, at in zip(("fp32", candidate), thresholds, strict=True)},
        "fp32": asdict(guard.reference),
        candidate: asdict(guard.candidate),
        "pairs_kept": guard.pairs_kept,
        "checks": guard.checks,
        "passed": guard.passed,
        "encode_seconds": seconds,
    }
    out = args.out or RESULTS / f"precision-{candidate}-{split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    sys.exit(0 if guard.passed else 1)


def _thresholds(builtin: Thresholds, best: dict[str, dict[str, float]], candidate: str, shifted: bool) -> Thresholds:
    """The candidate's built-in thresholds, moved (`shifted`) by its train shift from fp32 where over the tolerance."""
    shift = {kind: best[candidate][kind] - best["fp32"][kind] for kind in ("pair", "mining")}
    moved = {kind: value if abs(value) > SHIFT_TOLERANCE and shifted else 0.0 for kind, value in shift.items()}
    return Thresholds(builtin.pair + moved["pair"], builtin.mining + moved["mining"])


if __name__ == "__main__":
    main()
