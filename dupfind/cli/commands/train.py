"""`dupfind train`: fine-tune a model on labeled pairs, calibrated, with a model card."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dupfind.cli.app import command
from dupfind.cli.input_options import table_options
from dupfind.cli.labeled import cluster_column_options, pair_column_options, read_gold_clusters, read_labeled_pairs
from dupfind.cli.model_options import EmbedderOptions, embedder_options
from dupfind.cli.options import (
    ModelOption,
    QuietOption,
    check_choice,
    check_range,
)
from dupfind.cli.output import embedding_progress, info

if TYPE_CHECKING:
    from dupfind.cli.input_options import TableReader
    from dupfind.cli.labeled import ClusterColumns, PairColumns

PairsFileOption = Annotated[
    str, typer.Option("--pairs", help="Labeled pairs: question1, question2, is_duplicate (0/1).")
]
HoldoutOption = Annotated[
    float, typer.Option("--holdout", help="Share of the pairs held out (at most 2,000) to select and calibrate.")
]
Fp16Option = Annotated[
    bool, typer.Option("--fp16", help="Store the weights in float16: half the size, loaded as float32.")
]
ForceOption = Annotated[bool, typer.Option("--force", help="Replace a non-empty output directory.")]
TrainPrecisionOption = Annotated[
    str,
    typer.Option(
        "--precision",
        help="auto (torch's bf16 autocast on CPUs with AMX and CUDA devices with bf16, else fp32), fp32 or bf16.",
    ),
]


@command("train", aliases={"--batch-size": "--pairs-per-batch"})
@table_options
@pair_column_options
def train(
    pairs: PairsFileOption,
    table: TableReader,
    pair_columns: PairColumns,
    output: Annotated[str, typer.Option("--output", "-o", help="Directory to write the trained model to.")],
    recipe: Annotated[str, typer.Option("--recipe", help="seed (the seed model's card) or best.")] = "best",
    model: ModelOption = None,
    epochs: Annotated[float | None, typer.Option("--epochs", help="Epochs [default: the recipe's].")] = None,
    pairs_per_batch: Annotated[
        int | None, typer.Option("--pairs-per-batch", help="Pairs per training batch [default: the recipe's].")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed [default: the recipe's, 42].")] = None,
    holdout: HoldoutOption = 0.1,
    fp16: Fp16Option = False,
    precision: TrainPrecisionOption = "auto",
    force: ForceOption = False,
    quiet: QuietOption = False,
) -> None:
    """Fine-tune a model on labeled pairs and write it, with calibrated thresholds and a model card.

    Example: dupfind train --pairs train-pairs.csv -o my-model && dupfind mine questions.csv --model my-model
    """
    if quiet:
        quiet_libraries()
    from dupfind.quality.training.fitting import TRAINING_PRECISIONS, prepare_output
    from dupfind.quality.training.recipes import get_recipe
    from dupfind.quality.training.splits import training_pairs
    from dupfind.quality.training.trainer import train as run_training

    check_choice("--precision", precision, TRAINING_PRECISIONS)
    chosen = get_recipe(recipe, epochs, pairs_per_batch, seed)
    target = Path(output).expanduser()
    prepare_output(target, force)
    frame = training_pairs(read_labeled_pairs(table, pairs, pair_columns, quiet))
    result = run_training(
        frame,
        target,
        chosen,
        model,
        holdout,
        force,
        progress=not quiet,
        log=lambda message: info(message, quiet),
        fp16=fp16,
        precision=precision,
    )
    info(
        f"Wrote {result.output} in {result.seconds / 60:.1f} min; thresholds: pair {result.thresholds.pair:.3f}, "
        f"mining {result.thresholds.mining:.3f}",
        quiet,
    )


@command("train-reranker")
@embedder_options
@table_options
@pair_column_options
@cluster_column_options
def train_reranker(
    pairs: PairsFileOption,
    output: Annotated[str, typer.Option("--output", "-o", help="Directory to write the trained re-ranker to.")],
    embedding: EmbedderOptions,
    table: TableReader,
    pair_columns: PairColumns,
    cluster_columns: ClusterColumns,
    questions: Annotated[
        str | None,
        typer.Option("--questions", help="Questions with gold clusters: adds positives by cluster and hard negatives."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 42,
    holdout: HoldoutOption = 0.1,
    fp16: Fp16Option = False,
    force: ForceOption = False,
    quiet: QuietOption = False,
) -> None:
    """Train a cross-encoder re-ranker for --rerank, and write it calibrated, with a model card.

    It starts from the transformer of the built-in quora model (a new one-logit head) and trains for at most 50
    minutes, keeping its best held-out checkpoint; hard negatives come from the bi-encoder of --model, whose cosine
    it fuses with its own score and whose candidate thresholds it is calibrated with.

    Example: dupfind train-reranker --pairs train-pairs.csv --questions train-questions.csv -o my-reranker
    """
    if quiet:
        quiet_libraries()
    import pandas as pd

    from dupfind.quality.training.fitting import prepare_output
    from dupfind.quality.training.reranker import RerankerRecipe
    from dupfind.quality.training.reranker import train_reranker as run_training
    from dupfind.quality.training.splits import training_pairs
    from dupfind.vectors.model import fingerprint

    check_range("--holdout", holdout, 0.0, 1.0)
    target = Path(output).expanduser()
    prepare_output(target, force)
    ref = embedding.resolve()
    thresholds = embedding.thresholds_for(ref)  # a bad thresholds file fails before the model loads
    frame = training_pairs(read_labeled_pairs(table, pairs, pair_columns, quiet))
    clustered = None
    if questions is not None:
        gold = read_gold_clusters(table, questions, cluster_columns, quiet)
        clustered = pd.DataFrame({"question": gold.texts, "cluster": gold.clusters})
    embedder = embedding.load()
    with embedding_progress(embedder, "Encoding", quiet) as progressing:
        result = run_training(
            frame,
            clustered,
            target,
            progressing,
            fingerprint(ref),
            thresholds,
            RerankerRecipe(seed=seed),
            holdout,
            force,
            progress=not quiet,
            log=lambda message: info(message, quiet),
            fp16=fp16,
            precision=_training_precision(embedding),
        )
    found = result.settings.thresholds
    info(
        f"Wrote {result.output} in {result.seconds / 60:.1f} min; thresholds: pair {found.pair:.3f}, "
        f"mining {found.mining:.3f}",
        quiet,
    )


def _training_precision(embedding: EmbedderOptions) -> str:
    """The re-ranker's training precision: `--precision fp32` or `bf16` as given (for the bi-encoder too), else
    `auto` (int8 is the bi-encoder's only)."""
    asked = embedding.asked[1] if embedding.asked else "auto"
    return asked if asked in ("fp32", "bf16") else "auto"


def quiet_libraries() -> None:
    """Under -q, only errors from the training libraries: their progress bars (tqdm, read from the environment
    when first imported, so this runs before them) and their reports and warnings (loggers) are off."""
    for name in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        os.environ[name] = "1"
    for name in ("TRANSFORMERS_VERBOSITY", "DATASETS_VERBOSITY"):
        os.environ[name] = "error"
    for name in ("sentence_transformers", "transformers", "datasets", "huggingface_hub", "accelerate", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
