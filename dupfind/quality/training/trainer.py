"""Running sentence-transformers' trainer on a recipe, and writing the trained model, calibrated and carded."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from dupfind.quality.calibration import thresholds_from_holdout
from dupfind.quality.training.card import TrainResult, model_card
from dupfind.quality.training.fitting import Log, fit, model_directory, training_arguments
from dupfind.quality.training.holdout import HoldoutScores, evaluate_holdout, holdout_score, selection_evaluator
from dupfind.quality.training.losses import training_losses
from dupfind.quality.training.negatives import NegativeMiner, hard_negatives
from dupfind.quality.training.recipes import Recipe
from dupfind.quality.training.splits import DEFAULT_HOLDOUT, split_holdout
from dupfind.thresholds import load_thresholds, save_thresholds
from dupfind.vectors.model import resolve_model

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def build_datasets(
    pairs: pd.DataFrame,
    recipe: Recipe,
    model: SentenceTransformer | None = None,
    progress: bool = False,
    miner: NegativeMiner = hard_negatives,
) -> dict[str, Any]:
    """The two training sets: duplicate pairs (anchor, positive[, negative]) for the ranking loss, labeled pairs
    for the other. A recipe with hard negatives needs `model` to mine them with `miner`.

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
        ranking["negative"] = miner(pairs, anchors, positives, model, recipe.seed, progress)
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


def _sample(frame: pd.DataFrame, size: int | None, seed: int) -> pd.DataFrame:
    if size is None or size >= len(frame):
        return frame.sample(frac=1.0, random_state=seed)
    return frame.sample(n=size, random_state=seed)


def _training_arguments(recipe: Recipe, checkpoints: Path, steps: int, progress: bool, precision: str) -> Any:
    from sentence_transformers.sentence_transformer import SentenceTransformerTrainingArguments

    selecting = recipe.selection_evals > 0 and steps >= 2 * recipe.selection_evals
    return SentenceTransformerTrainingArguments(
        **training_arguments(recipe, checkpoints, steps, "holdout_score", progress, selecting, precision),
        lr_scheduler_type="linear",
        batch_sampler=recipe.batch_sampler,
        multi_dataset_batch_sampler=recipe.multi_dataset_sampler,
    )


def _steps(datasets: dict[str, Any], recipe: Recipe) -> int:
    batches = [-(-len(dataset) // recipe.batch_size) for dataset in datasets.values()]
    per_epoch = len(batches) * min(batches) if recipe.multi_dataset_sampler == "round_robin" else sum(batches)
    return max(1, int(per_epoch * recipe.epochs))


def train(
    pairs: pd.DataFrame,
    output: Path,
    recipe: Recipe,
    base: str | None = None,
    holdout: float = DEFAULT_HOLDOUT,
    force: bool = False,
    progress: bool = True,
    log: Log = lambda message: None,
    miner: NegativeMiner = hard_negatives,
    fp16: bool = False,
    precision: str = "auto",
) -> TrainResult:
    """Fine-tune `base` (None: the built-in model) on labeled pairs and write it, calibrated and carded, to `output`.

    `miner` finds the hard negatives of a recipe that has them (`negatives.hard_negatives` unless another is given).
    `fp16`: store the weights in float16 (`weights.store_fp16`), as dupfind ships its models. `precision`: train in
    torch's bf16 autocast (`bf16`), never (`fp32`), or where it trains faster (`auto`: `fitting.bf16_autocast`).

    Everything is written to a temporary directory beside `output` first, which replaces it only once complete.
    """
    started = time.monotonic()
    with model_directory(output, force, fp16) as tmp:
        result = _train_into(tmp, pairs, recipe, base, holdout, progress, log, started, miner, precision)
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
    miner: NegativeMiner,
    precision: str,
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
    datasets = build_datasets(train_pairs, recipe, model, progress, miner)
    steps = _steps(datasets, recipe)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=_training_arguments(recipe, tmp / "checkpoints", steps, progress, precision),
        train_dataset=datasets,
        loss=training_losses(model, recipe),
        evaluator=selection_evaluator("holdout_score", lambda trained: holdout_score(trained, held))
        if recipe.selection_evals
        else None,
    )
    fit(trainer, progress)
    after = evaluate_holdout(model, held, progress)
    log(_describe("After", after))

    model.save_pretrained(str(tmp))
    thresholds = thresholds_from_holdout(after.pair_threshold, load_thresholds(resolve_model(base)))
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


def _load_model(base: str | None) -> SentenceTransformer:
    from dupfind.vectors.backends.torch_backend import load_sentence_transformer

    return load_sentence_transformer(resolve_model(base))


def _describe(when: str, scores: HoldoutScores) -> str:
    return (
        f"{when}: held-out pair F1 {scores.pair_f1:.3f} (threshold {scores.pair_threshold:.3f}), "
        f"AP {scores.pair_ap:.3f}; "
        f"mining F1 {scores.mining_f1:.3f} (threshold {scores.mining_threshold:.3f}), AP {scores.mining_ap:.3f}; "
        f"ndcg@10 {scores.retrieval_ndcg:.3f}"
    )
