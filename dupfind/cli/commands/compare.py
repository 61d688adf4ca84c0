"""`dupfind compare`: are two questions duplicates?"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from dupfind.cli.app import command
from dupfind.cli.model_options import EmbedderOptions, RerankOptions, embedder_options, rerank_options
from dupfind.cli.options import ThresholdOption, check_range


@command("compare")
@embedder_options
@rerank_options
def compare(
    question_a: Annotated[str, typer.Argument(help="First question.")],
    question_b: Annotated[str, typer.Argument(help="Second question.")],
    embedding: EmbedderOptions,
    reranking: RerankOptions,
    threshold: ThresholdOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Score two questions; exit 0 if they are duplicates, 1 if not, 2 on error.

    With --rerank, the pair is a duplicate when its cosine reaches the candidate threshold and the
    re-ranker's score reaches its threshold.

    Example: dupfind compare "How do I learn Python?" "What is the best way to learn Python?"
    """
    from dataclasses import replace

    from dupfind.errors import DupfindError

    if not question_a.strip() or not question_b.strip():
        raise DupfindError("both questions must be non-blank")
    check_range("--threshold", threshold, -1, 1)
    ref = embedding.resolve()
    own = embedding.thresholds_for(ref)
    embedding = replace(embedding, cache=False)
    if not reranking.rerank:
        threshold = own.pair if threshold is None else threshold
        score = embedding.load().similarity(question_a, question_b)
        duplicate = score >= threshold
        if as_json:
            print(json.dumps({"score": round(score, 6), "threshold": threshold, "duplicate": duplicate}))
        else:
            verdict = "duplicate" if duplicate else "not duplicate"
            print(f"{score:.4f}\t{verdict} (threshold {threshold:.3f})")
        raise typer.Exit(0 if duplicate else 1)
    candidate, threshold = reranking.thresholds(ref, own, "pair", threshold)
    reranker = reranking.load(embedding)
    score = embedding.load().similarity(question_a, question_b)
    rerank_score = float(reranker.score([question_a], [question_b])[0])
    duplicate = score >= candidate and rerank_score >= threshold
    if as_json:
        result = {
            "score": round(score, 6),
            "rerank_score": round(rerank_score, 6),
            "candidate_threshold": candidate,
            "threshold": threshold,
            "duplicate": duplicate,
        }
        print(json.dumps(result))
    else:
        verdict = "duplicate" if duplicate else "not duplicate"
        print(
            f"{score:.4f}\t{rerank_score:.4f}\t{verdict} (re-rank threshold {threshold:.3f}, "
            f"candidate from cosine {candidate:.3f})"
        )
    raise typer.Exit(0 if duplicate else 1)
