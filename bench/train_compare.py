"""Dev figures of the base model and of models trained with `dupfind train` (the README's training table).

    python bench/train_compare.py [--data ../shared/data/quora] [--cache DIR] [NAME=MODEL_DIR ...]

Encodes `dev-questions.csv` once per model (its questions are exactly those of `dev-pairs.csv`) and
prints, as a Markdown table: pair best F1 and AP on dev-pairs; mining best F1 and AP (top-20 candidates),
ndcg@10, mrr@10 and accuracy@1 (each question retrieving the others, itself excluded) on dev-questions.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dupfind.quality.evaluation.labeled import clusters_from_frame, pairs_from_frame
from dupfind.quality.evaluation.mining import rank_candidates
from dupfind.quality.evaluation.pairs import evaluate_pairs
from dupfind.quality.evaluation.retrieval import evaluate_retrieval
from dupfind.vectors.backends import load_encoder
from dupfind.vectors.embedder import Embedder

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "quora"
COLUMNS = ("pair F1", "pair AP", "mining F1", "mining AP", "ndcg@10", "mrr@10", "accuracy@1")


def figures(model: str | None, data: Path, cache: Path | None, name: str) -> dict[str, float]:
    """The table's figures for one model."""
    questions = clusters_from_frame("dev-questions", pd.read_csv(data / "dev-questions.csv", dtype=str))
    pairs = pairs_from_frame("dev-pairs", pd.read_csv(data / "dev-pairs.csv", dtype=str))
    stored = cache / f"dev-{name}.npy" if cache else None
    if stored and stored.is_file():
        embeddings = np.load(stored)
    else:
        started = time.perf_counter()
        embeddings = Embedder(load_encoder(model)).embed(questions.texts)
        seconds = time.perf_counter() - started
        print(f"{name}: encoded {len(questions.texts)} questions in {seconds:.0f} s", file=sys.stderr)
        if stored:
            np.save(stored, embeddings)
    row = {text: i for i, text in enumerate(questions.texts)}
    first = embeddings[[row[text] for text in pairs.first]]
    second = embeddings[[row[text] for text in pairs.second]]
    report = evaluate_pairs(np.einsum("ij,ij->i", first, second).astype(np.float32), pairs.labels, 0.5)
    mining = rank_candidates(embeddings, questions.clusters)
    retrieval = evaluate_retrieval(embeddings, questions.clusters).metrics
    return {
        "pair F1": report.best_f1.f1,
        "pair AP": report.average_precision,
        "mining F1": mining.best_f1.f1,
        "mining AP": mining.average_precision,
        "ndcg@10": retrieval["ndcg@10"],
        "mrr@10": retrieval["mrr@10"],
        "accuracy@1": retrieval["accuracy@1"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", help="NAME=MODEL_DIR of trained models (the base model comes first)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--cache", type=Path, help="keep each model's dev embeddings here (dev-NAME.npy)")
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    models: list[tuple[str, str | None]] = [("base", None)]
    models += [(spec.split("=", 1)[0], spec.split("=", 1)[1]) for spec in args.models]
    print("| model | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---:|" * len(COLUMNS))
    for name, model in models:
        values = figures(model, args.data, args.cache, name)
        print(f"| {name} | " + " | ".join(f"{values[column]:.3f}" for column in COLUMNS) + " |", flush=True)


if __name__ == "__main__":
    main()
