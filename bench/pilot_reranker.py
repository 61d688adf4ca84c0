"""Pilots of the re-ranker's ingredients on train's held-out split (never dev): each variant trains on the same
slice of the training examples for a few minutes and is calibrated and measured as `dupfind train-reranker` does
(fused held-out pair AP and F1, mining, order pairs judged right). Variants: the start (`quora` or `base`) and the
generated order pairs (with or without, at their share of the full run). Prints one JSON line per variant.

    nice -n 5 .venv/bin/python bench/pilot_reranker.py [--examples 4000] [--minutes 5] [--variants quora+order ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

from dupfind.quality.training.order import order_pairs
from dupfind.quality.training.reranker import RerankerRecipe, train_reranker, training_examples
from dupfind.quality.training.splits import split_holdout
from dupfind.thresholds import load_thresholds
from dupfind.vectors.backends import load_encoder
from dupfind.vectors.cache import EmbeddingCache
from dupfind.vectors.embedder import Embedder
from dupfind.vectors.model import fingerprint, resolve_model

QUORA = Path(__file__).resolve().parents[2] / "shared" / "data" / "quora"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=4000)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--variants", nargs="+", default=["base", "quora", "quora+order"])
    args = parser.parse_args()
    raw = pd.read_csv(QUORA / "train-pairs.csv").dropna()
    pairs = pd.DataFrame({"sentence1": raw["question1"], "sentence2": raw["question2"], "label": raw["is_duplicate"]})
    clustered = pd.read_csv(QUORA / "train-questions.csv").dropna()
    questions = pd.DataFrame({"question": clustered["question"], "cluster": clustered["cluster"]})
    ref = resolve_model("quora")
    embedder = Embedder(load_encoder("quora"), EmbeddingCache())
    recipe = RerankerRecipe(order_pairs=False, epochs=1.0, minutes=args.minutes, selection_evals=1)
    train, held = split_holdout(pairs, 0.1, recipe.seed)
    excluded = set(held["sentence1"]) | set(held["sentence2"])
    examples, counts = training_examples(train, questions, embedder, recipe, excluded)
    generated = order_pairs(
        t for t in [*train["sentence1"], *train["sentence2"], *questions["question"]] if t not in excluded
    )
    share = round(args.examples * len(generated) / len(examples))
    rng = np.random.default_rng(0)
    base_slice = examples.iloc[: args.examples]
    swap = rng.random(share) < 0.5
    extra = generated.sample(share, random_state=0)
    extra = pd.DataFrame(
        {
            "sentence1": np.where(swap, extra["sentence2"], extra["sentence1"]),
            "sentence2": np.where(swap, extra["sentence1"], extra["sentence2"]),
            "label": extra["label"].astype(float).to_numpy(),
        }
    )
    with_order = pd.concat([base_slice, extra]).sample(frac=1.0, random_state=0).reset_index(drop=True)
    print(json.dumps({"full_examples": counts, "order_pairs": len(generated), "pilot_order_pairs": share}), flush=True)
    for variant in args.variants:
        start, _, extra_kind = variant.partition("+")
        chosen = replace(recipe, start=start)
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as tmp:
            result = train_reranker(
                pairs,
                questions,
                Path(tmp) / "out",
                embedder,
                fingerprint(ref),
                load_thresholds(ref),
                chosen,
                progress=False,
                log=lambda message: print(message, flush=True),
                examples=with_order if extra_kind == "order" else base_slice,
            )
        print(
            json.dumps(
                {
                    "variant": variant,
                    "minutes": round((time.monotonic() - started) / 60, 1),
                    "bi_encoder": asdict(result.bi_encoder),
                    "fused": asdict(result.reranked),
                    "fusion": asdict(result.settings.fusion),
                    "order_pairs_held_out": result.order_pairs,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
