"""Fine-tuning a model on labeled question pairs: recipes, a held-out split, calibration and a model card."""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.evaluation import MINING_TOP_K, PAIR_COLUMNS
from dupfind.model import Thresholds, load_thresholds, resolve_model, save_thresholds

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_HOLDOUT = 0.1
MAX_HOLDOUT_PAIRS = 2000

Log = Callable[[str], None]


@dataclass(frozen=True)
class Recipe:
    """How to fine-tune: MultipleNegativesRankingLoss on duplicate pairs plus a loss on labeled pairs."""

    name: str
    ranking_pairs: int | None  # duplicate pairs for the ranking loss, None: all of them
    labeled_pairs: int | None  # labeled pairs for the pair loss, None: all of them
    labeled_loss: Literal["CosineSimilarityLoss", "OnlineContrastiveLoss"]
    symmetric: bool  # the ranking loss also ranks each question's partner against the batch's other questions
    hard_negatives: bool  # give each duplicate pair a near-miss negative (labeled, else mined with the base model)
    batch_sampler: Literal["batch_sampler", "no_duplicates"]
    multi_dataset_sampler: Literal["round_robin", "proportional"]
    batch_size: int
    epochs: float
    learning_rate: float
    warmup_ratio: float
    max_seq_length: int
    seed: int
    selection_evals: int  # held-out evaluations during training to keep the best of; 0 keeps the last state

    def hyperparameters(self) -> dict[str, object]:
        """The recipe as a flat dict, for the model card."""
        return {key: "all" if value is None else value for key, value in asdict(self).items()}


RECIPES = {
    "seed": Recipe(
        name="seed",
        ranking_pairs=6678,
        labeled_pairs=18000,
        labeled_loss="CosineSimilarityLoss",
        symmetric=False,
        hard_negatives=False,
        batch_sampler="batch_sampler",
        multi_dataset_sampler="round_robin",
        batch_size=32,
        epochs=1,
        learning_rate=5e-5,
        warmup_ratio=0.0,
        max_seq_length=256,
        seed=42,
        selection_evals=0,
    ),
    "best": Recipe(
        name="best",
        ranking_pairs=None,
        labeled_pairs=18000,
        labeled_loss="OnlineContrastiveLoss",
        symmetric=True,
        hard_negatives=True,
        batch_sampler="no_duplicates",
        multi_dataset_sampler="proportional",
        batch_size=128,
        epochs=1,
        learning_rate=2e-5,  # 5e-5 drifted further from the base: lower mining F1 and ndcg@10 on dev
        warmup_ratio=0.1,
        max_seq_length=256,
        seed=42,
        selection_evals=2,
    ),
}


@dataclass(frozen=True)
class HoldoutScores:
    """Best-F1 thresholds and average precision on the held-out pairs and on their clusters (mining)."""

    pair_f1: float
    pair_threshold: float
    pair_ap: float
    mining_f1: float
    mining_threshold: float
    mining_ap: float
    retrieval_ndcg: float  # ndcg@10 of each held-out question retrieving the others (itself excluded)


@dataclass(frozen=True)
class TrainResult:
    """What `train` wrote and measured."""

    output: Path
    thresholds: Thresholds
    before: HoldoutScores
    after: HoldoutScores
    train_pairs: int
    holdout_pairs: int
    seconds: float


def get_recipe(
    name: str, epochs: float | None = None, batch_size: int | None = None, seed: int | None = None
) -> Recipe:
    """A named recipe, with the command line's overrides."""
    if name not in RECIPES:
        raise DupfindError(f"unknown recipe '{name}' (choose from {', '.join(RECIPES)})")
    recipe = RECIPES[name]
    if epochs is not None:
        if epochs <= 0:
            raise DupfindError(f"--epochs must be positive, got {epochs}")
        recipe = replace(recipe, epochs=epochs)
    if batch_size is not None:
        if batch_size < 2:
            raise DupfindError(f"--batch-size must be at least 2, got {batch_size}")
        recipe = replace(recipe, batch_size=batch_size)
    return recipe if seed is None else replace(recipe, seed=seed)


def read_pairs(source: str, columns: tuple[str, str, str] = PAIR_COLUMNS, fmt: str | None = None) -> pd.DataFrame:
    """Read labeled pairs as columns `sentence1, sentence2, label` (0/1); rows with a blank question are dropped."""
    from dupfind.evaluation import pairs_from_frame
    from dupfind.tables import read_table

    pairs = pairs_from_frame(source, read_table(source, fmt)[0], columns)
    return pd.DataFrame({"sentence1": pairs.first, "sentence2": pairs.second, "label": pairs.labels.astype(int)})


def components(left: list[str], right: list[str]) -> dict[str, str]:
    """Union-find over pairs: each question mapped to a representative of its connected component."""
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in zip(left, right, strict=True):
        parent[find(a)] = find(b)
    return {node: find(node) for node in parent}


def split_holdout(pairs: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Carve a held-out split sharing no question with the rest: whole connected components of the pair graph."""
    if not 0 < fraction < 1:
        raise DupfindError(f"--holdout must be between 0 and 1, got {fraction}")
    root = components(pairs["sentence1"].tolist(), pairs["sentence2"].tolist())
    group = pairs["sentence1"].map(root)
    sizes = group.value_counts(sort=False)
    order = np.random.default_rng(seed).permutation(len(sizes))
    wanted = min(max(1, round(fraction * len(pairs))), MAX_HOLDOUT_PAIRS)
    cumulative = sizes.iloc[order].cumsum()
    held_groups = set(cumulative.index[: int(np.searchsorted(cumulative.to_numpy(), wanted)) + 1])
    held = group.isin(held_groups)
    train, holdout = pairs[~held].reset_index(drop=True), pairs[held].reset_index(drop=True)
    for name, part in (("training", train), ("held-out", holdout)):
        if part["label"].nunique() < 2:
            raise DupfindError(
                f"too few pairs: the {name} split ({len(part)} pairs) needs duplicates and non-duplicates"
            )
    return train, holdout


def evaluate_holdout(model: SentenceTransformer, holdout: pd.DataFrame, progress: bool = False) -> HoldoutScores:
    """Pair and mining scores on held-out pairs; mining gold = pairs inside one component of duplicate edges."""
    from dupfind.evaluation import cosines, evaluate_pairs, evaluate_retrieval, rank_candidates

    texts = sorted(set(holdout["sentence1"]) | set(holdout["sentence2"]))
    position = {text: row for row, text in enumerate(texts)}
    embeddings = _encode(model, texts, progress)
    left = embeddings[holdout["sentence1"].map(position).to_numpy()]
    right = embeddings[holdout["sentence2"].map(position).to_numpy()]
    scores = cosines(left, right)
    pairs = evaluate_pairs(scores, holdout["label"].to_numpy().astype(bool), threshold=0.5)

    duplicates = holdout[holdout["label"] == 1]
    root = components(duplicates["sentence1"].tolist(), duplicates["sentence2"].tolist())
    clusters = pd.factorize(pd.Series([root.get(text, text) for text in texts]))[0].astype(np.int64)
    mining = rank_candidates(embeddings, clusters, MINING_TOP_K)
    return HoldoutScores(
        pair_f1=pairs.best_f1.f1,
        pair_threshold=pairs.best_f1.threshold,
        pair_ap=pairs.average_precision,
        mining_f1=mining.best_f1.f1,
        mining_threshold=mining.best_f1.threshold,
        mining_ap=mining.average_precision,
        retrieval_ndcg=evaluate_retrieval(embeddings, clusters).metrics["ndcg@10"],
    )


def _encode(model: SentenceTransformer, texts: list[str], progress: bool) -> NDArray[np.float32]:
    """L2-normalised float32 embeddings of texts with the model being trained."""
    embeddings = model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=progress)
    return np.asarray(embeddings, dtype=np.float32)


def _holdout_evaluator(holdout: pd.DataFrame) -> Any:
    """A sentence-transformers evaluator for model selection: mean of pair AP and mining AP on the held-out split."""
    from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

    class HoldoutEvaluator(SentenceEvaluator):
        def __init__(self) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.primary_metric = "holdout_score"

        def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> Any:
            scores = evaluate_holdout(model, holdout)
            metrics = {f"holdout_{key}": value for key, value in asdict(scores).items()}
            metrics["holdout_score"] = (scores.pair_ap + scores.mining_ap) / 2
            return metrics

    return HoldoutEvaluator()


def build_datasets(
    pairs: pd.DataFrame, recipe: Recipe, model: SentenceTransformer | None = None, progress: bool = False
) -> dict[str, Any]:
    """The two training sets: duplicate pairs (anchor, positive[, negative]) for the ranking loss, labeled pairs
    for the other. A recipe with hard negatives needs `model` to mine them.

    A recipe that asks for fewer pairs than there are draws a seeded random sample (`recipe.seed`).
    """
    from datasets import Dataset

    duplicates = pairs[pairs["label"] == 1]
    duplicates = _sample(duplicates, recipe.ranking_pairs, recipe.seed)
    labeled = _sample(pairs, recipe.labeled_pairs, recipe.seed)
    ranking = {"anchor": duplicates["sentence1"].tolist(), "positive": duplicates["sentence2"].tolist()}
    if recipe.hard_negatives:
        if model is None:
            raise ValueError("a recipe with hard negatives needs the model to mine them")
        anchors, positives = ranking["anchor"], ranking["positive"]
        ranking["negative"] = hard_negatives(pairs, anchors, positives, model, recipe.seed, progress)
    return {
        "duplicates": Dataset.from_dict(ranking),
        "labeled": Dataset.from_dict(
            {
                "sentence1": labeled["sentence1"].tolist(),
                "sentence2": labeled["sentence2"].tolist(),
                "label": labeled["label"].astype(float).tolist(),
            }
        ),
    }


HARD_NEGATIVE_CANDIDATES = 30  # nearest neighbours of each anchor considered as its negative
HARD_NEGATIVE_CHOICES = 10  # the negative is drawn from this many of the nearest eligible ones
HARD_NEGATIVE_MARGIN = 0.05  # negatives score at most (1 - margin) x the positive: closer may be unlabeled duplicates


def hard_negatives(
    pairs: pd.DataFrame,
    anchors: list[str],
    positives: list[str],
    model: SentenceTransformer,
    seed: int,
    progress: bool = False,
) -> list[str]:
    """A negative for each (anchor, positive): a question labeled not a duplicate of the anchor when there is one,
    else one of the anchor's nearest questions (by `model`) among all of `pairs`, outside its cluster of duplicates
    and scoring clearly below the positive; an anchor with no such neighbour gets a random question.
    """
    from dupfind.evaluation import cosines, top_neighbours

    texts = sorted(set(pairs["sentence1"]) | set(pairs["sentence2"]))
    row = {text: i for i, text in enumerate(texts)}
    duplicates = pairs[pairs["label"] == 1]
    root = components(duplicates["sentence1"].tolist(), duplicates["sentence2"].tolist())
    cluster = np.array([row[root.get(text, text)] for text in texts])
    labeled: dict[str, list[str]] = {}
    for a, b in pairs.loc[pairs["label"] == 0, ["sentence1", "sentence2"]].itertuples(index=False):
        labeled.setdefault(a, []).append(b)
        labeled.setdefault(b, []).append(a)

    embeddings = _encode(model, texts, progress)
    anchor_rows = np.array([row[text] for text in anchors])
    positive_scores = cosines(embeddings[anchor_rows], embeddings[[row[text] for text in positives]])
    unique_anchors, inverse = np.unique(anchor_rows, return_inverse=True)
    neighbours, scores = top_neighbours(embeddings, HARD_NEGATIVE_CANDIDATES, unique_anchors)
    rng = np.random.default_rng(seed)
    negatives = []
    for i, anchor in enumerate(anchors):
        if anchor in labeled:
            negatives.append(labeled[anchor][rng.integers(len(labeled[anchor]))])
            continue
        found, found_scores = neighbours[inverse[i]], scores[inverse[i]]
        eligible = found[
            (cluster[found] != cluster[anchor_rows[i]])
            & (found_scores <= (1 - HARD_NEGATIVE_MARGIN) * positive_scores[i])
        ][:HARD_NEGATIVE_CHOICES]
        pool = eligible if len(eligible) else np.arange(len(texts))
        negatives.append(texts[int(pool[rng.integers(len(pool))])])
    return negatives


def _sample(frame: pd.DataFrame, size: int | None, seed: int) -> pd.DataFrame:
    if size is None or size >= len(frame):
        return frame.sample(frac=1.0, random_state=seed)
    return frame.sample(n=size, random_state=seed)


def _losses(model: SentenceTransformer, recipe: Recipe) -> dict[str, Any]:
    from sentence_transformers.sentence_transformer import losses

    directions: tuple[Literal["query_to_doc", "doc_to_query"], ...] = (
        ("query_to_doc", "doc_to_query") if recipe.symmetric else ("query_to_doc",)
    )
    ranking = losses.MultipleNegativesRankingLoss(model, scale=20.0, directions=directions)
    labeled: Any
    if recipe.labeled_loss == "OnlineContrastiveLoss":
        labeled = losses.OnlineContrastiveLoss(model, margin=0.5)
    else:
        labeled = losses.CosineSimilarityLoss(model)
    return {"duplicates": ranking, "labeled": labeled}


def _training_arguments(recipe: Recipe, checkpoints: Path, steps: int, progress: bool) -> Any:
    import torch
    from sentence_transformers.sentence_transformer import SentenceTransformerTrainingArguments

    selecting = recipe.selection_evals > 0 and steps >= 2 * recipe.selection_evals
    every = max(1, steps // recipe.selection_evals) if selecting else steps
    return SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=recipe.epochs,
        per_device_train_batch_size=recipe.batch_size,
        learning_rate=recipe.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=math.ceil(recipe.warmup_ratio * steps),
        seed=recipe.seed,
        data_seed=recipe.seed,
        batch_sampler=recipe.batch_sampler,
        multi_dataset_batch_sampler=recipe.multi_dataset_sampler,
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        dataloader_pin_memory=torch.cuda.is_available(),
        eval_strategy="steps" if selecting else "no",
        save_strategy="steps" if selecting else "no",
        eval_steps=every,
        save_steps=every,
        save_only_model=True,
        save_total_limit=2,
        load_best_model_at_end=selecting,
        metric_for_best_model="holdout_score",
        greater_is_better=True,
        logging_steps=max(1, steps // 20),
        report_to="none",
        disable_tqdm=not progress,
    )


def _steps(datasets: dict[str, Any], recipe: Recipe) -> int:
    batches = [-(-len(dataset) // recipe.batch_size) for dataset in datasets.values()]
    per_epoch = len(batches) * min(batches) if recipe.multi_dataset_sampler == "round_robin" else sum(batches)
    return max(1, int(per_epoch * recipe.epochs))


def prepare_output(output: Path, force: bool) -> Path:
    """Check the output directory can be written; returns the temporary directory to train into."""
    if output.exists() and not output.is_dir():
        raise DupfindError(f"'{output}' exists and is not a directory")
    if output.is_dir() and any(output.iterdir()) and not force:
        raise DupfindError(f"'{output}' exists and is not empty (use --force to replace it)")
    tmp = output.with_name(output.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    return tmp


def _publish(tmp: Path, output: Path) -> None:
    """Move the finished model into place, replacing what was there only now."""
    old = output.with_name(output.name + ".old")
    if output.exists():
        if old.exists():
            shutil.rmtree(old)
        output.rename(old)
    tmp.rename(output)
    if old.exists():
        shutil.rmtree(old)


def train(
    pairs: pd.DataFrame,
    output: Path,
    recipe: Recipe,
    base: str | None = None,
    holdout: float = DEFAULT_HOLDOUT,
    force: bool = False,
    progress: bool = True,
    log: Log = lambda message: None,
) -> TrainResult:
    """Fine-tune `base` (None: the built-in model) on labeled pairs and write it, calibrated and carded, to `output`.

    Everything is written to `output.tmp` first, which replaces `output` only once complete.
    """
    started = time.monotonic()
    tmp = prepare_output(output, force)
    try:
        result = _train_into(tmp, pairs, recipe, base, holdout, progress, log, started)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _publish(tmp, output)
    return replace(result, output=output)


def _train_into(
    tmp: Path,
    pairs: pd.DataFrame,
    recipe: Recipe,
    base: str | None,
    holdout: float,
    progress: bool,
    log: Log,
    started: float,
) -> TrainResult:
    train_pairs, held = split_holdout(pairs, holdout, recipe.seed)
    log(f"Training on {len(train_pairs)} pairs; {len(held)} held out (sharing no question) to select and calibrate")
    model = _load_model(base)
    model.max_seq_length = recipe.max_seq_length
    before = evaluate_holdout(model, held, progress)
    log(_describe("Before", before))

    from sentence_transformers.sentence_transformer import SentenceTransformerTrainer

    if recipe.hard_negatives:
        log("Finding a hard negative for each duplicate pair (encoding the training questions)")
    datasets = build_datasets(train_pairs, recipe, model, progress)
    steps = _steps(datasets, recipe)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=_training_arguments(recipe, tmp / "checkpoints", steps, progress),
        train_dataset=datasets,
        loss=_losses(model, recipe),
        evaluator=_holdout_evaluator(held) if recipe.selection_evals else None,
    )
    if not progress:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    with redirect_stdout(sys.stderr):  # the trainer prints its logs to stdout, which carries only data
        trainer.train()
    after = evaluate_holdout(model, held, progress)
    log(_describe("After", after))

    shutil.rmtree(tmp / "checkpoints", ignore_errors=True)
    model.save_pretrained(str(tmp))
    thresholds = calibrate(after, load_thresholds(resolve_model(base)))
    details: dict[str, object] = {
        "source": "held-out split of the training pairs; mining = pair + the base model's mining - pair offset",
        "holdout_pairs": len(held),
        "pair_f1": after.pair_f1,
    }
    save_thresholds(tmp, thresholds, details)
    seconds = time.monotonic() - started
    result = TrainResult(tmp, thresholds, before, after, len(train_pairs), len(held), seconds)
    (tmp / "README.md").write_text(model_card(result, recipe, base, datasets), encoding="utf-8")
    return result


def calibrate(after: HoldoutScores, base: Thresholds) -> Thresholds:
    """The pair threshold is the held-out best-F1 one; mining keeps the base model's offset from it.

    The held-out questions are too few to calibrate mining: with fewer distractors than a real corpus,
    the best mining threshold comes out close to the pair threshold.
    """
    return Thresholds(pair=after.pair_threshold, mining=min(1.0, after.pair_threshold + base.mining - base.pair))


def _load_model(base: str | None) -> SentenceTransformer:
    from dupfind.backends.torch_backend import load_sentence_transformer

    return load_sentence_transformer(resolve_model(base))


def _describe(when: str, scores: HoldoutScores) -> str:
    return (
        f"{when}: held-out pair F1 {scores.pair_f1:.3f} (threshold {scores.pair_threshold:.3f}), "
        f"AP {scores.pair_ap:.3f}; "
        f"mining F1 {scores.mining_f1:.3f} (threshold {scores.mining_threshold:.3f}), AP {scores.mining_ap:.3f}; "
        f"ndcg@10 {scores.retrieval_ndcg:.3f}"
    )


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

Losses: MultipleNegativesRankingLoss (scale 20, cos_sim{", both directions" if recipe.symmetric else ""}) on the
duplicate pairs{" with a hard negative each" if recipe.hard_negatives else ""}, {recipe.labeled_loss} on the labeled
pairs.

| hyperparameter | value |
|---|---|
{hyper}
"""
