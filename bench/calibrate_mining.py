"""The mining threshold at a corpus size: train's held-out questions mined among other train questions.

A threshold calibrated on the 3,402 questions of train's held-out split (as `train` and `train-reranker` can) is
too low for a real corpus: the more questions, the more near misses each has among its top-k neighbours. Here the
held-out questions (the questions of the held-out pairs that `train` and `train-reranker` carve, seed 42, and their
gold clusters) are mined among distractors, other train questions, drawn at random and nested, up to every one;
only candidate pairs that touch a held-out question are judged (a held-out cluster holds no distractor, so a pair
with one is not a gold duplicate), with `eval mining`'s protocol (top-20 candidates of every question). Reports,
for each corpus size, the bi-encoder's best-F1 mining threshold and AP, and the same with the built-in re-ranker
(fused scores) on the candidates from the cosine, of 0.60, 0.61, ... up to the bi-encoder's threshold, that gives
its best F1; `--store N` writes the thresholds and that candidate cosine of the corpus of N questions into the
shipped models' `dupfind.json`. Dev is never read.

    .venv/bin/python bench/calibrate_mining.py [--sizes 3402,10000,20000,40000,68926] [--store 20000]
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dupfind import Embedder, EmbeddingCache, load_encoder
from dupfind.pairs.rerank import Reranker
from dupfind.quality.evaluation.curve import Curve
from dupfind.quality.evaluation.mining import MINING_TOP_K, candidate_pairs
from dupfind.quality.training.splits import DEFAULT_HOLDOUT, read_pairs, split_holdout
from dupfind.thresholds import read_settings
from dupfind.vectors.backends import load_pair_scorer
from dupfind.vectors.model import SHIPPED_MODELS_DIR, fingerprint, resolve_model, resolve_reranker
from dupfind.vectors.pair_scorer import score_cache

QUORA = Path(__file__).resolve().parents[2] / "shared" / "data" / "quora"
RESULTS = Path(__file__).resolve().parent / "results" / "mining_threshold.json"
SEED = 42  # the trainers' default seed: the same held-out split
CANDIDATES = np.round(np.arange(0.60, 1.0, 0.01), 2)  # the re-ranker's candidate cosines tried


def held_out_among_distractors() -> tuple[list[str], np.ndarray, np.ndarray]:
    """Train's distinct questions, held-out ones first then the distractors in a random order; each one's gold
    cluster (an integer), and whether it is held out."""
    pairs = read_pairs(str(QUORA / "train-pairs.csv"))
    _, held = split_holdout(pairs, DEFAULT_HOLDOUT, SEED)
    questions = pd.read_csv(QUORA / "train-questions.csv", keep_default_na=False, dtype=str)
    questions = questions.drop_duplicates("question").reset_index(drop=True)
    held_texts = set(held["sentence1"]) | set(held["sentence2"])
    touching = set(questions.loc[questions["question"].isin(held_texts), "cluster"])
    judged = questions["cluster"].isin(touching).to_numpy()
    order = np.concatenate([np.flatnonzero(judged), np.random.default_rng(SEED).permutation(np.flatnonzero(~judged))])
    questions = questions.iloc[order].reset_index(drop=True)
    return questions["question"].tolist(), pd.factorize(questions["cluster"])[0], judged[order]


def best(scores: np.ndarray, hits: np.ndarray, gold: int) -> dict[str, float]:
    curve = Curve.of(scores.astype(np.float32), hits, gold)
    threshold, f1, precision, recall = curve.best_f1()
    return {
        "threshold": threshold,
        "f1": f1,
        "precision": precision,
        "recall": recall,
        "average_precision": curve.average_precision(),
        "candidates": len(scores),
    }


def at_size(
    size: int, texts: list[str], embeddings: np.ndarray, clusters: np.ndarray, judged: np.ndarray, reranker: Reranker
) -> dict[str, Any]:
    """Both stages' best-F1 mining thresholds on the first `size` questions (every held-out one among them); the
    re-ranker's candidates at the cosine of `CANDIDATES` that gives its best F1 (ties: the higher, fewer pairs)."""
    found = candidate_pairs(embeddings[:size], MINING_TOP_K)
    touching = judged[found.left] | judged[found.right]
    left, right, scores = found.left[touching], found.right[touching], found.scores[touching]
    hits = clusters[left] == clusters[right]
    sizes = np.bincount(clusters[judged])
    gold = int(np.sum(sizes * (sizes - 1) // 2))
    bi_encoder = best(scores, hits, gold)
    proposed = scores >= CANDIDATES[0]
    fused = np.full(len(scores), -1.0, dtype=np.float32)
    fused[proposed] = reranker.score(
        [texts[row] for row in left[proposed].tolist()],
        [texts[row] for row in right[proposed].tolist()],
        scores[proposed],
    )
    by_candidate = []
    for candidate in CANDIDATES[bi_encoder["threshold"] >= CANDIDATES].tolist():
        kept = scores >= candidate
        by_candidate.append(best(fused[kept], hits[kept], gold) | {"candidate_threshold": candidate})
    chosen = max(reversed(by_candidate), key=lambda stage: stage["f1"])
    return {
        "questions": size,
        "gold_pairs": gold,
        "bi-encoder": bi_encoder,
        "re-ranked": chosen,
        "re-ranked by candidate threshold": by_candidate,
    }


def _said(stage: dict[str, Any]) -> str:
    proposed = f"candidates from cosine {stage['candidate_threshold']:.2f}, " if "candidate_threshold" in stage else ""
    return (
        f"best F1 {stage['f1']:.4f} at {stage['threshold']:.4f} (AP {stage['average_precision']:.4f}, "
        f"{proposed}{stage['candidates']} pairs judged)"
    )


def store(row: dict[str, Any], bi_encoder_fp: str) -> None:
    """The mining thresholds of one corpus size written into the shipped `quora` and `quora-reranker` settings."""
    source = (
        f"train's held-out split ({int(row['judged'])} questions, {row['gold_pairs']} gold pairs) mined among "
        f"{row['questions'] - int(row['judged'])} other train questions ({row['questions']} in all), top-"
        f"{MINING_TOP_K} candidates, pairs touching a held-out question judged (bench/calibrate_mining.py)"
    )
    quora = SHIPPED_MODELS_DIR / "quora" / "dupfind.json"
    data = json.loads(quora.read_text(encoding="utf-8"))
    data["mining_threshold"] = row["bi-encoder"]["threshold"]
    data["calibration"]["source"] = "held-out split of the training pairs"
    data["calibration"]["mining"] = {"source": source, "f1": row["bi-encoder"]["f1"]}
    quora.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    reranker = SHIPPED_MODELS_DIR / "quora-reranker" / "dupfind.json"
    data = json.loads(reranker.read_text(encoding="utf-8"))
    settings = data["rerank"]
    settings["mining"] = row["re-ranked"]["threshold"]
    settings["candidates"][bi_encoder_fp]["mining"] = row["re-ranked"]["candidate_threshold"]
    settings["margin"]["mining"] = row["bi-encoder"]["threshold"] - settings["candidates"][bi_encoder_fp]["mining"]
    data["calibration"]["mining"] = {"source": source, "f1": row["re-ranked"]["f1"]}
    reranker.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3402,10000,20000,40000,68926", help="corpus sizes, comma-separated")
    parser.add_argument("--store", type=int, default=None, help="write the thresholds of this corpus size")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    texts, clusters, judged = held_out_among_distractors()
    sizes = sorted({min(int(size), len(texts)) for size in args.sizes.split(",")} | ({args.store} - {None}))
    if sizes[0] < int(judged.sum()):
        raise SystemExit(f"every size must hold the {int(judged.sum())} held-out questions")
    embedder = Embedder(load_encoder(precision="fp32"), EmbeddingCache())
    embeddings = embedder.embed(texts)
    bi_encoder_fp = fingerprint(resolve_model(None))
    ref = resolve_reranker(None)
    reranker = Reranker(load_pair_scorer(None, precision="fp32"), score_cache(), fusion=read_settings(ref).fusion)
    rows = []
    for size in sizes:
        row = at_size(size, texts, embeddings, clusters, judged, reranker) | {"judged": int(judged.sum())}
        rows.append(row)
        print(
            f"{size:6d} questions: "
            + "; ".join(f"{stage} {_said(row[stage])}" for stage in ("bi-encoder", "re-ranked"))
        )
        if size == args.store:
            store(row, bi_encoder_fp)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"cpu": platform.processor() or platform.machine(), "stored": args.store, "sizes": rows}
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
