"""`dupfind compare`: are two questions duplicates?"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from dupfind.cli.common import EmbedderOptions, ThresholdOption, check_range, command, embedder_options


@command("compare")
@embedder_options
def compare(
    question_a: Annotated[str, typer.Argument(help="First question.")],
    question_b: Annotated[str, typer.Argument(help="Second question.")],
    embedding: EmbedderOptions,
    threshold: ThresholdOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Score two questions; exit 0 if they are duplicates, 1 if not, 2 on error.

    Example: dupfind compare "How do I learn Python?" "What is the best way to learn Python?"
    """
    from dataclasses import replace

    from dupfind.errors import DupfindError
    from dupfind.model import load_thresholds

    if not question_a.strip() or not question_b.strip():
        raise DupfindError("both questions must be non-blank")
    check_range("--threshold", threshold, -1, 1)
    ref = embedding.resolve()
    threshold = load_thresholds(ref, embedding.precision).pair if threshold is None else threshold
    score = replace(embedding, cache=False).load().similarity(question_a, question_b)
    duplicate = score >= threshold
    if as_json:
        print(json.dumps({"score": round(score, 6), "threshold": threshold, "duplicate": duplicate}))
    else:
        verdict = "duplicate" if duplicate else "not duplicate"
        print(f"{score:.4f}\t{verdict} (threshold {threshold:.3f})")
    raise typer.Exit(0 if duplicate else 1)
