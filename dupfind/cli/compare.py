"""`dupfind compare`: are two questions duplicates?"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from dupfind.cli.common import BackendOption, ModelOption, ThresholdOption, command


@command("compare")
def compare(
    question_a: Annotated[str, typer.Argument(help="First question.")],
    question_b: Annotated[str, typer.Argument(help="Second question.")],
    threshold: ThresholdOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    model: ModelOption = None,
    backend: BackendOption = None,
) -> None:
    """Score two questions; exit 0 if they are duplicates, 1 if not, 2 on error.

    Example: dupfind compare "How do I learn Python?" "What is the best way to learn Python?"
    """
    from dupfind.encoding import load_encoder, similarity
    from dupfind.errors import DupfindError
    from dupfind.mining import check_threshold
    from dupfind.model import load_thresholds, resolve_model

    if not question_a.strip() or not question_b.strip():
        raise DupfindError("both questions must be non-blank")
    if threshold is None:
        threshold = load_thresholds(resolve_model(model)).pair
    check_threshold(threshold)
    score = similarity(load_encoder(model, backend), question_a, question_b)
    duplicate = score >= threshold
    if as_json:
        print(json.dumps({"score": round(score, 6), "threshold": threshold, "duplicate": duplicate}))
    else:
        verdict = "duplicate" if duplicate else "not duplicate"
        print(f"{score:.4f}\t{verdict} (threshold {threshold:.3f})")
    raise typer.Exit(0 if duplicate else 1)
