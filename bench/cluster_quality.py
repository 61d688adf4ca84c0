"""How well `dupfind clusters` recovers Quora's gold duplicate groups, per method.

Prints pairwise precision, recall and F1 (over pairs of questions put in one group) and the adjusted
Rand index against the `cluster` column of ../shared/data/quora/dev-questions.csv, with the built-in
model. Encoding 27k questions takes minutes on a CPU: `--embeddings FILE.npy` keeps them for reruns.

    .venv/bin/python bench/cluster_quality.py --embeddings /tmp/dev-embeddings.npy
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.metrics import adjusted_rand_score
from sklearn.metrics.cluster import pair_confusion_matrix

from dupfind.pairs.clustering import DEFAULT_CLUSTER_TOP_K, METHODS, cluster_embeddings
from dupfind.thresholds import load_thresholds
from dupfind.vectors.backends import load_encoder
from dupfind.vectors.encoding import Embeddings, encode
from dupfind.vectors.model import resolve_model

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "quora" / "dev-questions.csv"


def pair_scores(gold: NDArray[np.int64], predicted: NDArray[np.int64]) -> tuple[float, float, float]:
    """Precision, recall and F1 of the pairs of rows that share a predicted group, against the gold groups."""
    (_, false_pos), (false_neg, true_pos) = pair_confusion_matrix(gold, predicted)
    precision = true_pos / max(true_pos + false_pos, 1)
    recall = true_pos / max(true_pos + false_neg, 1)
    return precision, recall, 2 * precision * recall / max(precision + recall, 1e-12)


def embeddings_of(texts: list[str], cache: Path | None) -> Embeddings:
    """The questions' embeddings with the built-in model, from `cache` when it is there."""
    if cache is not None and cache.is_file():
        embeddings: Embeddings = np.load(cache, allow_pickle=False)
        if len(embeddings) == len(texts):
            return embeddings
    started = time.perf_counter()
    embeddings = encode(load_encoder(), texts)
    print(f"encoded {len(texts)} questions in {time.perf_counter() - started:.0f} s")
    if cache is not None:
        np.save(cache, embeddings)
    return embeddings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=DEV, help="CSV with question and cluster columns")
    parser.add_argument("--embeddings", type=Path, help="cache of the questions' embeddings (.npy)")
    parser.add_argument("--threshold", type=float, nargs="*", help="thresholds [default: the model's mining one]")
    parser.add_argument("--top-k", type=int, default=DEFAULT_CLUSTER_TOP_K)
    args = parser.parse_args()

    frame = pd.read_csv(args.questions, dtype=str, keep_default_na=False)
    gold = pd.factorize(frame["cluster"])[0]
    embeddings = embeddings_of(frame["question"].tolist(), args.embeddings)
    thresholds = args.threshold or [load_thresholds(resolve_model(None)).mining]
    print(f"{len(frame)} questions, {gold.max() + 1} gold groups; top-k {args.top_k}")
    header = ("method", "threshold", "precision", "recall", "F1", "ARI", "groups", "largest", "time")
    print("{:<12} {:>9} {:>9} {:>7} {:>6} {:>6} {:>7} {:>7} {:>6}".format(*header))
    for threshold in thresholds:
        for method in METHODS:
            started = time.perf_counter()
            clusters = cluster_embeddings(embeddings, threshold, method, args.top_k)
            elapsed = time.perf_counter() - started
            precision, recall, f1 = pair_scores(gold, clusters.labels)
            ari = adjusted_rand_score(gold, clusters.labels)
            print(
                f"{method:<12} {threshold:>9.3f} {precision:>9.3f} {recall:>7.3f} {f1:>6.3f} {ari:>6.3f} "
                f"{len(clusters):>7} {int(clusters.sizes.max()):>7} {elapsed:>5.1f}s"
            )


if __name__ == "__main__":
    main()
