"""Model cards (README.md): one layout for both trained models (their data, held-out figures and recipe), and
the bi-encoder's card."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dupfind.quality.evaluation.mining import MINING_TOP_K
from dupfind.quality.training.holdout import HoldoutScores
from dupfind.quality.training.recipes import Recipe
from dupfind.thresholds import Thresholds


@dataclass(frozen=True)
class ModelCard:
    """What a model card says; `render` lays it out. `figures` are (metric, before, after) held-out rows under the
    two `columns` headings."""

    pipeline_tag: str
    kind_tag: str
    title: str
    about: str
    data: str
    columns: tuple[str, str]
    figures: Sequence[tuple[str, float, float]]
    recipe: str
    hyperparameters: dict[str, object]

    def render(self) -> str:
        """The README.md, with the front matter the Hugging Face Hub reads."""
        table = "\n".join(f"| {label} | {before:.4f} | {after:.4f} |" for label, before, after in self.figures)
        hyper = "\n".join(f"| {key} | {value} |" for key, value in self.hyperparameters.items())
        return f"""---
library_name: sentence-transformers
pipeline_tag: {self.pipeline_tag}
tags:
- sentence-transformers
- {self.kind_tag}
- dupfind
---

# {self.title}

{self.about}

## Data

{self.data}

## Held-out evaluation

| metric | {self.columns[0]} | {self.columns[1]} |
|---|---:|---:|
{table}

## Recipe

{self.recipe}

| hyperparameter | value |
|---|---|
{hyper}
"""


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
    sizes = ", ".join(f"{name}: {len(dataset)}" for name, dataset in datasets.items())
    thresholds = json.dumps({"pair": round(result.thresholds.pair, 4), "mining": round(result.thresholds.mining, 4)})
    return ModelCard(
        pipeline_tag="sentence-similarity",
        kind_tag="sentence-similarity",
        title=f"Duplicate-question model fine-tuned with `dupfind train --recipe {recipe.name}`",
        about=f"""Base model: `{base or "all-MiniLM-L6-v2 (built-in)"}`. Load it with \
`SentenceTransformer("<this directory>")`
or `dupfind mine --model <this directory>`; `dupfind.json` holds its calibrated thresholds {thresholds}.""",
        data=f"""{result.train_pairs} labeled pairs for training (used: {sizes}; a recipe that uses fewer than there \
are draws
a random sample seeded with its `seed`); {result.holdout_pairs} pairs held out, whole
connected components of the pair graph so that no held-out question was trained on. The held-out split
chooses the best checkpoint (when the recipe evaluates during training), calibrates the thresholds, and
gives the figures below. Training took {result.seconds / 60:.1f} minutes.""",
        columns=("before (base model)", "after"),
        figures=[(label, before[key], after[key]) for label, key in rows],
        recipe=f"""Losses: MultipleNegativesRankingLoss (scale 20, cos_sim, computed in mini-batches of 32 as
CachedMultipleNegativesRankingLoss{", both directions" if recipe.symmetric else ""}) on the
duplicate pairs{" with a hard negative each" if recipe.hard_negatives else ""}, {recipe.labeled_loss} on the labeled
pairs.""",
        hyperparameters=recipe.hyperparameters(),
    ).render()
