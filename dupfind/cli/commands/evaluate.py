"""`dupfind eval pairs|retrieval|mining`: the model's quality on labeled pairs or gold clusters of questions."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dupfind.cli.app import command, command_group
from dupfind.cli.input_options import table_options
from dupfind.cli.labeled import (
    PAIR_COLUMN_ALIASES,
    CandidatesTopKOption,
    LabeledFileArgument,
    cluster_column_options,
    pair_column_options,
    read_gold_clusters,
    read_labeled_pairs,
)
from dupfind.cli.model_options import EmbedderOptions, RerankOptions, embedder_options, rerank_options
from dupfind.cli.options import (
    QuietOption,
    ThresholdOption,
    check_range,
)
from dupfind.cli.output import embedding_progress, info, rerank_progress, stage, warn
from dupfind.cli.reports import (
    ReportFormatOption,
    ReportOutputOption,
    emit,
    mining_table,
    page_output,
    pairs_table,
    report_format,
    reranked_table,
    retrieval_table,
)
from dupfind.errors import DupfindError
from dupfind.quality.evaluation.mining import MINING_TOP_K

if TYPE_CHECKING:
    from dupfind.cli.input_options import TableReader
    from dupfind.cli.labeled import ClusterColumns, PairColumns
    from dupfind.quality.evaluation.labeled import LabeledPairs
    from dupfind.quality.evaluation.plots import Scores
    from dupfind.thresholds import Rule
    from dupfind.vectors.embedder import Embedder
    from dupfind.vectors.encoding import Embeddings

eval_app = command_group("eval", "Measure the model's quality on labeled pairs or gold clusters of questions.")


@command("pairs", eval_app, aliases=PAIR_COLUMN_ALIASES)
@embedder_options
@rerank_options
@table_options
@pair_column_options
def eval_pairs(
    file: LabeledFileArgument,
    embedding: EmbedderOptions,
    reranking: RerankOptions,
    table: TableReader,
    pair_columns: PairColumns,
    threshold: ThresholdOption = None,
    plot: Annotated[
        str | None,
        typer.Option(
            "--plot",
            help="Write a picture of the score distributions: PNG, or as its extension says (.svg, .pdf, ...).",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Write the report to this JSON file, or a page of the pairs to FILE.html."),
    ] = None,
    output_format: Annotated[
        str | None,
        typer.Option("--format", "-f", help="table, json, jsonl or html [default: table on a terminal, else jsonl]."),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Accuracy, F1, precision, recall, AP and ROC-AUC on labeled pairs, with a histogram of the scores.

    With --rerank: the bi-encoder's candidates (their recall) and the re-ranker's decisions among them.

    Example: dupfind eval pairs dev-pairs.csv --plot scores.png
    """
    from dupfind.io.destinations import check_destination
    from dupfind.quality.evaluation.pairs import evaluate_pairs, pair_scores
    from dupfind.quality.evaluation.plots import check_plot_target, histogram, plot_scores

    page_to = page_output(output, output_format)
    fmt = None if page_to == "-" else report_format(output, None if output_format == "html" else output_format)
    check_range("--threshold", threshold, -1, 1)
    if plot is not None:
        check_plot_target(plot)
        if reranking.enabled:
            raise DupfindError("--plot shows cosine scores; it does not go with --rerank")
    if page_to is not None and reranking.enabled:
        raise DupfindError("the HTML page shows cosine scores; it does not go with --rerank")
    check_destination(page_to or output, [file])
    ref = embedding.resolve()
    rule = embedding.rule("pair", ref, reranking, threshold)
    pairs = read_labeled_pairs(table, file, pair_columns, quiet)
    threshold = rule.cosine
    encoder = embedding.load()
    loaded = reranking.load(embedding)  # a re-ranker that cannot load fails before the encoding
    with stage("encode"), embedding_progress(encoder, "Encoding", quiet) as embedder:
        scores = pair_scores(embedder, pairs)
    if loaded is not None and rule.rerank is not None:
        from dupfind.quality.evaluation.reranking import evaluate_reranked_pairs

        with stage("re-rank"), rerank_progress(loaded, quiet) as reranker:
            reranked = evaluate_reranked_pairs(
                scores,
                pairs.labels,
                pairs.first,
                pairs.second,
                reranker,
                rule.cosine,
                rule.rerank,
            )
        data = {"task": "pairs", "file": file, "model": ref.name, "reranker": reranking.name()}
        emit({**data, **asdict(reranked)}, fmt, output, reranked_table)
        return
    with stage("evaluate"):
        report = evaluate_pairs(scores, pairs.labels, threshold)
    data = {"task": "pairs", "file": file, "model": ref.name, **asdict(report)}
    emit(data, fmt, None if page_to is not None else output, pairs_table)
    if page_to is not None:
        _write_pairs_page(page_to, data, pairs, scores, embedding, rule)
    if fmt == "table":
        print("\n".join(histogram(scores, pairs.labels, threshold)))
    if plot is not None:
        plot_scores(scores, pairs.labels, threshold, plot)
        info(f"Wrote {plot}", quiet)


@command("retrieval", eval_app)
@embedder_options
@table_options
@cluster_column_options
def eval_retrieval(
    file: LabeledFileArgument,
    embedding: EmbedderOptions,
    table: TableReader,
    cluster_columns: ClusterColumns,
    output: ReportOutputOption = None,
    output_format: ReportFormatOption = None,
    quiet: QuietOption = False,
) -> None:
    """Each clustered question retrieves the others: accuracy, precision, recall@k, nDCG@10, MRR@10, MAP@100.

    Example: dupfind eval retrieval dev-questions.csv
    """
    from dupfind.io.destinations import check_destination
    from dupfind.quality.evaluation.retrieval import evaluate_retrieval

    fmt = report_format(output, output_format)
    check_destination(output, [file])
    ref = embedding.resolve()
    clustered = read_gold_clusters(table, file, cluster_columns, quiet)
    embeddings = _embed(embedding.load(), clustered.texts, quiet)
    with stage("evaluate"):
        report = evaluate_retrieval(embeddings, clustered.clusters)
    data = {"task": "retrieval", "file": file, "model": ref.name, "questions": report.questions}
    emit({**data, "queries": report.queries, **report.metrics}, fmt, output, retrieval_table)


@command("mining", eval_app)
@embedder_options
@rerank_options
@table_options
@cluster_column_options
def eval_mining(
    file: LabeledFileArgument,
    embedding: EmbedderOptions,
    reranking: RerankOptions,
    table: TableReader,
    cluster_columns: ClusterColumns,
    threshold: ThresholdOption = None,
    top_k: CandidatesTopKOption = MINING_TOP_K,
    output: ReportOutputOption = None,
    output_format: ReportFormatOption = None,
    quiet: QuietOption = False,
) -> None:
    """Mined pairs against every pair inside a cluster: precision, recall and F1 (in force and best), and AP.

    With --rerank: the bi-encoder's candidates (their recall) and the re-ranker's decisions among them, as
    `mine --rerank` (--top-k candidates per question).

    Example: dupfind eval mining dev-questions.csv --top-k 20
    """
    from dupfind.io.destinations import check_destination
    from dupfind.quality.evaluation.mining import evaluate_mining

    fmt = report_format(output, output_format)
    check_destination(output, [file])
    check_range("--threshold", threshold, -1, 1)
    check_range("--top-k", top_k, 1)
    ref = embedding.resolve()
    rule = embedding.rule("mining", ref, reranking, threshold)
    clustered = read_gold_clusters(table, file, cluster_columns, quiet)
    threshold = rule.cosine
    encoder = embedding.load()
    loaded = reranking.load(embedding)  # a re-ranker that cannot load fails before the encoding
    embeddings = _embed(encoder, clustered.texts, quiet)
    if loaded is not None and rule.rerank is not None:
        from dupfind.quality.evaluation.reranking import evaluate_reranked_mining

        with stage("re-rank"), rerank_progress(loaded, quiet) as reranker:
            reranked = evaluate_reranked_mining(
                embeddings,
                clustered.clusters,
                clustered.texts,
                reranker,
                rule.cosine,
                rule.rerank,
                top_k,
            )
        data = {"task": "mining", "file": file, "model": ref.name, "reranker": reranking.name()}
        emit({**data, "top_k": top_k, **asdict(reranked)}, fmt, output, reranked_table)
        return
    with stage("evaluate"):
        report = evaluate_mining(embeddings, clustered.clusters, threshold, top_k)
    if report.truncated:
        warn(f"{report.truncated} questions had more than {top_k} neighbours above {threshold:.3f} (raise --top-k)")
    emit({"task": "mining", "file": file, "model": ref.name, **asdict(report)}, fmt, output, mining_table)


def _write_pairs_page(
    output: str, data: dict[str, Any], pairs: LabeledPairs, scores: Scores, embedding: EmbedderOptions, rule: Rule
) -> None:
    """The labeled pairs best first, found or missed at the threshold, under the report's figures and the histogram
    of the scores of duplicates and non-duplicates."""
    import pandas as pd

    from dupfind.cli.pages import page
    from dupfind.io.write import write_table

    frame = pd.DataFrame(
        {"score": scores, "label": pairs.labels, "question_a": pairs.first, "question_b": pairs.second}
    )
    at = data["at_threshold"]
    facts = [
        ("file", data["file"]),
        ("pairs", f"{data['pairs']:,}"),
        ("duplicates", f"{data['duplicates']:,}"),
        ("accuracy", f"{at['accuracy']:.4f}"),
        ("F1", f"{at['f1']:.4f}"),
        ("precision", f"{at['precision']:.4f}"),
        ("recall", f"{at['recall']:.4f}"),
        ("AP", f"{data['average_precision']:.4f}"),
        ("ROC-AUC", f"{data['roc_auc']:.4f}"),
    ]
    shown = page(embedding, data["model"], rule, facts=facts)
    write_table(frame, output, "html", title=f"Labeled pairs: {data['file']}", page=shown)


def _embed(encoder: Embedder, texts: list[str], quiet: bool) -> Embeddings:
    with stage("encode"), embedding_progress(encoder, "Encoding", quiet) as embedder:
        return embedder.embed(texts)
