"""`dupfind compare`: are two questions duplicates?"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from dupfind.cli.app import command
from dupfind.cli.model_options import EmbedderOptions, RerankOptions, embedder_options, rerank_by_default_options
from dupfind.cli.options import JsonOption, QuietOption, ReportFormatOption, ThresholdOption, report_format


@command("compare")
@embedder_options
@rerank_by_default_options
def compare(
    question_a: Annotated[str, typer.Argument(help="First question.")],
    question_b: Annotated[str, typer.Argument(help="Second question.")],
    embedding: EmbedderOptions,
    reranking: RerankOptions,
    threshold: ThresholdOption = None,
    output_format: ReportFormatOption = "table",
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Score two questions; exit 0 if they are duplicates, 1 if not, 2 on error.

    The built-in re-ranker decides (--no-rerank: the cosine alone): the pair is a duplicate when its cosine
    reaches the candidate threshold and its re-rank score reaches the re-ranker's threshold.

    Example: dupfind compare "How do I learn Python?" "What is the best way to learn Python?"
    """
    from dataclasses import replace

    from dupfind.errors import DupfindError
    from dupfind.pairs.compare import compare_questions

    if not question_a.strip() or not question_b.strip():
        raise DupfindError("both questions must be non-blank")
    fmt = report_format(output_format, as_json)
    rule = embedding.rule("pair", embedding.resolve(), reranking, threshold)
    embedding = replace(embedding, cache=False)
    reranker = reranking.load(embedding)
    comparison = compare_questions(embedding.load(), question_a, question_b, rule, reranker)
    print(json.dumps(comparison.to_json()) if fmt == "json" else comparison.describe())
    raise typer.Exit(0 if comparison.duplicate else 1)
