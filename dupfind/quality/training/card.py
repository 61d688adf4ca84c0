"""The model card (README.md) of a trained model: its data, recipe and held-out scores."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dupfind.quality.evaluation.mining import MINING_TOP_K
from dupfind.quality.training.holdout import HoldoutScores
from dupfind.quality.training.recipes import Recipe
from dupfind.thresholds import Thresholds


@dataclass(frozen=True)
class TrainResult:
    """What `train` wrote and measured: what its model card reports."""

    output: Path
    thresholds: Thresholds
    before: HoldoutScores
    after: HoldoutScores
    train_pairs: int
    holdout_pairs: int
    seconds: float


def model_card(result: TrainResult, recipe: Recipe, base: str | None, datasets: dict[str, Any]) -> str:
    """A README.md for the trained model: what it was trained from and how, and its held-out scores."""
    rows = [
        ("pair best F1", "pair_f1"),
        ("pair best-F1 threshold", "pair_threshold"),
        ("pair average precision", "pair_ap"),
        (f"mining best F1 (top-{MINING_TOP_K} candidates)", "mining_f1"),
        ("mining best-F1 threshold", "mining_threshold"),
        ("mining average precision", "mining_ap"),
        ("retrieval ndcg@10", "retrieval_ndcg"),
    ]
    before, after = asdict(result.before), asdict(result.after)
    table = "\n".join(f"| {label} | {before[key]:.4f} | {after[key]:.4f} |" for label, key in rows)
    hyper = "\n".join(f"| {key} | {value} |" for key, value in recipe.hyperparameters().items())
    sizes = ", ".join(f"{name}: {len(dataset)}" for name, dataset in datasets.items())
    thresholds = json.dumps({"pair": round(result.thresholds.pair, 4), "mining": round(result.thresholds.mining, 4)})
    return f"""---
library_name: sentence-transformers
pipeline_tag: sentence-similarity
tags:
- sentence-transformers
- sentence-similarity
- dupfind
---

# Duplicate-question model fine-tuned with `dupfind train --recipe {recipe.name}`

Base model: `{base or "all-MiniLM-L6-v2 (built-in)"}`. Load it with `SentenceTransformer("<this directory>")`
or `dupfind mine --model <this directory>`; `dupfind.json` holds its calibrated thresholds {thresholds}.

## Data

{result.train_pairs} labeled pairs for training (used: {sizes}; a recipe that uses fewer than there are draws
a random sample seeded with its `seed`); {result.holdout_pairs} pairs held out, whole
connected components of the pair graph so that no held-out question was trained on. The held-out split
chooses the best checkpoint (when the recipe evaluates during training), calibrates the thresholds, and
gives the figures below. Training took {result.seconds / 60:.1f} minutes.

## Held-out evaluation

| metric | before (base model) | after |
|---|---:|---:|
{table}

## Recipe

Losses: MultipleNegativesRankingLoss (scale 20, cos_sim, computed in mini-batches of 32 as
CachedMultipleNegativesRankingLoss{", both directions" if recipe.symmetric else ""}) on the
duplicate pairs{" with a hard negative each" if recipe.hard_negatives else ""}, {recipe.labeled_loss} on the labeled
pairs.

| hyperparameter | value |
|---|---|
{hyper}
"""
