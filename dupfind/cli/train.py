"""`dupfind train`: fine-tune a model on labeled pairs, calibrated, with a model card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dupfind.cli.common import FormatInOption, ModelOption, QuietOption, command, info


@command("train")
def train(
    pairs: Annotated[str, typer.Option("--pairs", help="Labeled pairs: question1, question2, is_duplicate (0/1).")],
    output: Annotated[str, typer.Option("--output", "-o", help="Directory to write the trained model to.")],
    recipe: Annotated[str, typer.Option("--recipe", help="seed (the seed model's card) or best.")] = "best",
    model: ModelOption = None,
    epochs: Annotated[float | None, typer.Option("--epochs", help="Epochs [default: the recipe's].")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Pairs per batch [default: the recipe's].")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed [default: the recipe's, 42].")] = None,
    holdout: Annotated[
        float, typer.Option("--holdout", help="Share of the pairs held out (at most 2,000) to select and calibrate.")
    ] = 0.1,
    question1_col: Annotated[str, typer.Option("--question1-col", help="First question column.")] = "question1",
    question2_col: Annotated[str, typer.Option("--question2-col", help="Second question column.")] = "question2",
    label_col: Annotated[str, typer.Option("--label-col", help="Label column (1 duplicate, 0 not).")] = "is_duplicate",
    format_in: FormatInOption = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty output directory.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Fine-tune a model on labeled pairs and write it, with calibrated thresholds and a model card.

    Example: dupfind train --pairs train-pairs.csv -o my-model && dupfind mine questions.csv --model my-model
    """
    from dupfind.training import get_recipe, prepare_output, read_pairs
    from dupfind.training import train as run_training

    chosen = get_recipe(recipe, epochs, batch_size, seed)
    target = Path(output).expanduser()
    prepare_output(target, force)
    frame = read_pairs(pairs, (question1_col, question2_col, label_col), format_in)
    info(f"Read {len(frame)} pairs ({int(frame['label'].sum())} duplicates) from {pairs}", quiet)
    result = run_training(
        frame, target, chosen, model, holdout, force, progress=not quiet, log=lambda message: info(message, quiet)
    )
    info(
        f"Wrote {result.output} in {result.seconds / 60:.1f} min; thresholds: pair {result.thresholds.pair:.3f}, "
        f"mining {result.thresholds.mining:.3f}",
        quiet,
    )
