"""`dupfind eval pairs|retrieval|mining` and `dupfind calibrate`: quality on labeled data, and thresholds from it."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dupfind.cli.app import command, command_group
from dupfind.cli.model_options import EmbedderOptions, RerankOptions, embedder_options, rerank_options
from dupfind.cli.options import (
    ClusterColOption,
    EncodingOption,
    FormatInOption,
    LabelColOption,
    Question1ColOption,
    Question2ColOption,
    QuietOption,
    TextColOption,
    ThresholdOption,
    check_range,
)
from dupfind.cli.output import embedding_progress, info, rerank_progress, stage, warn
from dupfind.errors import DupfindError
from dupfind.quality.evaluation.curve import f1_score
from dupfind.quality.evaluation.labeled import CLUSTER_COLUMN, PAIR_COLUMNS, GoldClusters, LabeledPairs
from dupfind.quality.evaluation.mining import MINING_TOP_K

if TYPE_CHECKING:
    from rich.table import Table

    from dupfind.quality.calibration import Calibration
    from dupfind.vectors.encoding import Embeddings

Report = dict[str, Any]
REPORT_FORMATS = ("table", "json", "jsonl")
# Old spellings of renamed options, accepted (hidden) for one release.
PAIR_COLUMN_ALIASES = {"--q1-col": "--question1-col", "--q2-col": "--question2-col"}

eval_app = command_group("eval", "Measure the model's quality on labeled pairs or gold clusters of questions.")

LabeledFileArgument = Annotated[str, typer.Argument(help="CSV, TSV, JSONL, JSON or Parquet file; - for stdin.")]
CandidatesTopKOption = Annotated[
    int, typer.Option("--top-k", "-k", help="Candidate neighbours per question, as `mine --top-k`.")
]
ReportOutputOption = Annotated[str | None, typer.Option("--output", "-o", help="Write the report to this JSON file.")]
ReportFormatOption = Annotated[
    str | None, typer.Option("--format", "-f", help="table, json or jsonl [default: table on a terminal, else jsonl].")
]


@command("pairs", eval_app, aliases=PAIR_COLUMN_ALIASES)
@embedder_options
@rerank_options
def eval_pairs(
    file: LabeledFileArgument,
    embedding: EmbedderOptions,
    reranking: RerankOptions,
    threshold: ThresholdOption = None,
    plot: Annotated[str | None, typer.Option("--plot", help="Write a PNG of the score distributions.")] = None,
    question1_col: Question1ColOption = PAIR_COLUMNS[0],
    question2_col: Question2ColOption = PAIR_COLUMNS[1],
    label_col: LabelColOption = PAIR_COLUMNS[2],
    output: ReportOutputOption = None,
    output_format: ReportFormatOption = None,
    format_in: FormatInOption = None,
    encoding: EncodingOption = "utf-8",
    quiet: QuietOption = False,
) -> None:
    """Accuracy, F1, precision, recall, AP and ROC-AUC on labeled pairs, with a histogram of the scores.

    With --rerank: the bi-encoder's candidates (their recall) and the re-ranker's decisions among them.

    Example: dupfind eval pairs dev-pairs.csv --plot scores.png
    """
    from dupfind.io.read import read_table
    from dupfind.quality.evaluation.pairs import evaluate_pairs, pair_scores
    from dupfind.quality.evaluation.plots import check_plot_target, histogram, plot_scores

    fmt = _report_format(output, output_format)
    check_range("--threshold", threshold, -1, 1)
    if plot is not None:
        check_plot_target(plot)
        if reranking.rerank:
            raise DupfindError("--plot shows cosine scores; it does not go with --rerank")
    ref = embedding.resolve()
    candidate, decide = reranking.thresholds(ref, embedding.thresholds_for(ref), "pair", threshold)
    with stage("read"):
        pairs = _pairs_from(
            file, read_table(file, format_in, encoding)[0], (question1_col, question2_col, label_col), quiet
        )
    threshold = embedding.thresholds_for(ref).pair if threshold is None else threshold
    with stage("encode"), embedding_progress(embedding.load(), "Encoding", quiet) as embedder:
        scores = pair_scores(embedder, pairs)
    if reranking.rerank:
        from dupfind.quality.evaluation.reranking import evaluate_reranked_pairs

        with stage("re-rank"), rerank_progress(reranking.load(embedding), quiet) as reranker:
            reranked = evaluate_reranked_pairs(
                scores, pairs.labels, pairs.first, pairs.second, reranker, candidate, decide
            )
        data = {"task": "pairs", "file": file, "model": ref.name, "reranker": reranking.name()}
        _emit({**data, **asdict(reranked)}, fmt, output, _reranked_table)
        return
    with stage("evaluate"):
        report = evaluate_pairs(scores, pairs.labels, threshold)
    _emit({"task": "pairs", "file": file, "model": ref.name, **asdict(report)}, fmt, output, _pairs_table)
    if fmt == "table":
        print("\n".join(histogram(scores, pairs.labels, threshold)))
    if plot is not None:
        plot_scores(scores, pairs.labels, threshold, plot)
        info(f"Wrote {plot}", quiet)


@command("retrieval", eval_app)
@embedder_options
def eval_retrieval(
    file: LabeledFileArgument,
    embedding: EmbedderOptions,
    text_col: TextColOption = None,
    cluster_col: ClusterColOption = CLUSTER_COLUMN,
    output: ReportOutputOption = None,
    output_format: ReportFormatOption = None,
    format_in: FormatInOption = None,
    encoding: EncodingOption = "utf-8",
    quiet: QuietOption = False,
) -> None:
    """Each clustered question retrieves the others: accuracy, precision, recall@k, nDCG@10, MRR@10, MAP@100.

    Example: dupfind eval retrieval dev-questions.csv
    """
    from dupfind.io.read import read_table
    from dupfind.quality.evaluation.retrieval import evaluate_retrieval

    fmt = _report_format(output, output_format)
    ref = embedding.resolve()
    with stage("read"):
        clustered = _clusters_from(file, read_table(file, format_in, encoding)[0], text_col, cluster_col, quiet)
    embeddings = _embed(embedding, clustered.texts, quiet)
    with stage("evaluate"):
        report = evaluate_retrieval(embeddings, clustered.clusters)
    data = {"task": "retrieval", "file": file, "model": ref.name, "questions": report.questions}
    _emit({**data, "queries": report.queries, **report.metrics}, fmt, output, _retrieval_table)


@command("mining", eval_app)
@embedder_options
@rerank_options
def eval_mining(
    file: LabeledFileArgument,
    embedding: EmbedderOptions,
    reranking: RerankOptions,
    threshold: ThresholdOption = None,
    top_k: CandidatesTopKOption = MINING_TOP_K,
    text_col: TextColOption = None,
    cluster_col: ClusterColOption = CLUSTER_COLUMN,
    output: ReportOutputOption = None,
    output_format: ReportFormatOption = None,
    format_in: FormatInOption = None,
    encoding: EncodingOption = "utf-8",
    quiet: QuietOption = False,
) -> None:
    """Mined pairs against every pair inside a cluster: precision, recall and F1 (in force and best), and AP.

    With --rerank: the bi-encoder's candidates (their recall) and the re-ranker's decisions among them, as
    `mine --rerank` (--top-k candidates per question).

    Example: dupfind eval mining dev-questions.csv --top-k 20
    """
    from dupfind.io.read import read_table
    from dupfind.quality.evaluation.mining import evaluate_mining

    fmt = _report_format(output, output_format)
    check_range("--threshold", threshold, -1, 1)
    check_range("--top-k", top_k, 1)
    ref = embedding.resolve()
    candidate, decide = reranking.thresholds(ref, embedding.thresholds_for(ref), "mining", threshold)
    with stage("read"):
        clustered = _clusters_from(file, read_table(file, format_in, encoding)[0], text_col, cluster_col, quiet)
    threshold = embedding.thresholds_for(ref).mining if threshold is None else threshold
    embeddings = _embed(embedding, clustered.texts, quiet)
    if reranking.rerank:
        from dupfind.quality.evaluation.reranking import evaluate_reranked_mining

        with stage("re-rank"), rerank_progress(reranking.load(embedding), quiet) as reranker:
            reranked = evaluate_reranked_mining(
                embeddings, clustered.clusters, clustered.texts, reranker, candidate, decide, top_k
            )
        data = {"task": "mining", "file": file, "model": ref.name, "reranker": reranking.name()}
        _emit({**data, "top_k": top_k, **asdict(reranked)}, fmt, output, _reranked_table)
        return
    with stage("evaluate"):
        report = evaluate_mining(embeddings, clustered.clusters, threshold, top_k)
    if report.truncated:
        warn(f"{report.truncated} questions had more than {top_k} neighbours above {threshold:.3f} (raise --top-k)")
    _emit({"task": "mining", "file": file, "model": ref.name, **asdict(report)}, fmt, output, _mining_table)


@command("calibrate", aliases={**PAIR_COLUMN_ALIASES, "--print-only": "--dry-run"})
@embedder_options
def calibrate(
    embedding: EmbedderOptions,
    file: Annotated[
        str | None, typer.Argument(help="Labeled pairs or clustered questions (told apart by their columns).")
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="What FILE holds: pairs or mining.")] = None,
    pairs_file: Annotated[str | None, typer.Option("--pairs", help="Labeled pairs: the pair threshold.")] = None,
    questions_file: Annotated[
        str | None, typer.Option("--questions", help="GoldClusters questions: the mining threshold.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the thresholds without storing them.")] = False,
    top_k: CandidatesTopKOption = MINING_TOP_K,
    question1_col: Question1ColOption = PAIR_COLUMNS[0],
    question2_col: Question2ColOption = PAIR_COLUMNS[1],
    label_col: LabelColOption = PAIR_COLUMNS[2],
    text_col: TextColOption = None,
    cluster_col: ClusterColOption = CLUSTER_COLUMN,
    output_format: ReportFormatOption = None,
    format_in: FormatInOption = None,
    encoding: EncodingOption = "utf-8",
    quiet: QuietOption = False,
) -> None:
    """Find the best-F1 thresholds on labeled data and store them with the model, for `mine` and `compare`.

    Example: dupfind calibrate --pairs train-pairs.csv --questions train-questions.csv --model ./my-model
    """
    from dupfind.io.destinations import check_destination
    from dupfind.io.read import read_table
    from dupfind.quality.calibration import apply, calibrate_all, check_writable, detect_kind, store_calibration
    from dupfind.thresholds import load_thresholds, store_project_thresholds
    from dupfind.vectors.model import THRESHOLDS_FILE

    fmt = _report_format(None, output_format)
    check_range("--top-k", top_k, 1)
    ref = embedding.resolve()
    project = None if embedding.thresholds is None else Path(embedding.thresholds).expanduser()
    if project is not None:
        check_destination(str(project))
    elif ref.path is not None and not ref.is_builtin and not dry_run:
        check_writable(ref.path)
    sources = _calibration_sources(file, kind, pairs_file, questions_file)
    pair_columns = (question1_col, question2_col, label_col)
    inputs: list[tuple[str, LabeledPairs | GoldClusters]] = []
    with stage("read"):
        frames = [(source, read_table(source, format_in, encoding)[0], wanted) for source, wanted in sources]
        kinds = [
            wanted or detect_kind(source, frame.columns, pair_columns, cluster_col) for source, frame, wanted in frames
        ]
        if len(set(kinds)) < len(kinds):
            raise DupfindError("give one file of pairs and one of clustered questions at most")
        for (source, frame, _), kind in zip(frames, kinds, strict=True):
            if kind == "pairs":
                inputs.append((source, _pairs_from(source, frame, pair_columns, quiet)))
            else:
                inputs.append((source, _clusters_from(source, frame, text_col, cluster_col, quiet)))
    with embedding_progress(embedding.load(), "Encoding", quiet) as embedder, stage("calibrate"):
        calibrations = calibrate_all(embedder, inputs, top_k)
    for calibration in calibrations:
        _report_uncertainty(calibration)
    current = (
        embedding.thresholds_for(ref)
        if project is not None and project.is_file()
        else load_thresholds(ref, embedding.precision)
    )
    thresholds = apply(current, calibrations)
    stored = None
    if dry_run:
        target = project or (None if ref.path is None or ref.is_builtin else ref.path / THRESHOLDS_FILE)
        info(f"Not stored (--dry-run){f'; without it they go to {target}' if target else ''}", quiet)
    elif project is not None:
        store_project_thresholds(project, ref, thresholds, embedding.precision)
        stored = str(project)
        info(f"Stored in {stored}: commands run with --thresholds {project} use them", quiet)
    elif ref.path is None or ref.is_builtin:
        _tell_how_to_use(ref.name if ref.path is None else "the built-in model", calibrations)
    else:
        stored = str(store_calibration(ref.path, current, calibrations, embedding.precision))
        info(f"Stored in {stored}: `mine` and `compare` with --model {ref.path} now use them", quiet)
    for missing in sorted({"pair", "mining"} - {calibration.kind for calibration in calibrations}):
        info(f"The {missing} threshold stays {getattr(thresholds, missing):.3f} (not calibrated here)", quiet)
    data = {
        "model": ref.name,
        "precision": embedding.precision,
        "pair_threshold": thresholds.pair,
        "mining_threshold": thresholds.mining,
    }
    details = {calibration.kind: asdict(calibration) for calibration in calibrations}
    _emit({**data, "stored": stored, "calibration": details}, fmt, None, _calibration_table)


def _report_uncertainty(calibration: Calibration) -> None:
    """Say how sure the threshold is (a 90 % range) and warn when the labels are too few or too one-sided."""
    if calibration.threshold_range is not None and calibration.f1_range is not None:
        (low, high), (f1_low, f1_high) = calibration.threshold_range, calibration.f1_range
        info(
            f"{calibration.source}: {calibration.kind} threshold {calibration.threshold:.3f} "
            f"(90% range {low:.3f}–{high:.3f}), F1 {calibration.f1:.3f} (90% range {f1_low:.3f}–{f1_high:.3f})"
        )
    for message in calibration.warnings:
        warn(f"{calibration.source}: {message}")


def _calibration_sources(
    file: str | None, kind: str | None, pairs_file: str | None, questions_file: str | None
) -> list[tuple[str, str | None]]:
    """The files to calibrate on, each with what it holds (None: tell by its columns)."""
    if kind is not None and kind not in ("pairs", "mining"):
        raise DupfindError(f"--kind must be pairs or mining, got '{kind}'")
    if kind is not None and file is None:
        raise DupfindError("--kind says what FILE holds; give a FILE")
    sources = [(file, kind), (pairs_file, "pairs"), (questions_file, "mining")]
    given = [(source, wanted) for source, wanted in sources if source is not None]
    if not given:
        raise DupfindError("give a FILE, or --pairs FILE and/or --questions FILE")
    return given


def _tell_how_to_use(model: str, calibrations: Sequence[Calibration]) -> None:
    uses = " and ".join(
        f"--threshold {calibration.threshold:.3f} to `dupfind {'compare' if calibration.kind == 'pair' else 'mine'}`"
        for calibration in calibrations
    )
    warn(
        f"not stored: the folder of {model} is not yours to write. Store them for this project with "
        f"--thresholds dupfind.toml, pass {uses}, or copy the model to a folder of yours and calibrate the copy"
    )


def _pairs_from(source: str, frame: Any, columns: Sequence[str], quiet: bool) -> LabeledPairs:
    from dupfind.quality.evaluation.labeled import pairs_from_frame

    pairs = pairs_from_frame(source, frame, columns)
    if pairs.skipped_blank:
        warn(f"{source}: skipped {pairs.skipped_blank} pairs with a blank question")
    info(f"Read {len(pairs.labels)} pairs ({int(pairs.labels.sum())} duplicates) from {source}", quiet)
    return pairs


def _clusters_from(source: str, frame: Any, text_col: str | None, cluster_col: str, quiet: bool) -> GoldClusters:
    from dupfind.quality.evaluation.labeled import clusters_from_frame

    clustered = clusters_from_frame(source, frame, text_col, cluster_col)
    if clustered.skipped_blank:
        warn(f"{source}: skipped {clustered.skipped_blank} blank questions")
    info(f"Read {len(clustered.texts)} questions in {clustered.clusters.max() + 1} clusters from {source}", quiet)
    return clustered


def _embed(embedding: EmbedderOptions, texts: list[str], quiet: bool) -> Embeddings:
    with stage("encode"), embedding_progress(embedding.load(), "Encoding", quiet) as embedder:
        return embedder.embed(texts)


def _report_format(output: str | None, fmt: str | None) -> str | None:
    """`--format`, else nothing on stdout when writing a file, else a table to a terminal and JSONL to a pipe."""
    if fmt is not None:
        if fmt not in REPORT_FORMATS:
            raise DupfindError(f"unknown report format '{fmt}' (choose from {', '.join(REPORT_FORMATS)})")
        return fmt
    if output is not None:
        return None
    return "table" if sys.stdout.isatty() else "jsonl"


def _emit(data: Report, fmt: str | None, output: str | None, table: Callable[[Report], Table]) -> None:
    """Write the report as JSON to `output` (atomically), and to stdout in `fmt`."""
    from dupfind.io.write import atomic_output

    if output is not None:
        with atomic_output(output) as handle:
            handle.write(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    if fmt == "table":
        from rich.console import Console

        Console().print(table(data))
    elif fmt is not None:
        print(json.dumps(data, indent=1 if fmt == "json" else None, ensure_ascii=False), flush=True)


def _new_table(title: str, caption: str, labels: Sequence[str], figures: Sequence[str]) -> Table:
    from rich.table import Table

    table = Table(title=title, caption=caption, min_width=max(len(title), len(caption)))
    for column in labels:
        table.add_column(column)
    for column in figures:
        table.add_column(column, justify="right")
    return table


def _figures(row: dict[str, Any], names: Sequence[str]) -> list[str]:
    return [str(row[name]) if isinstance(row[name], int) else f"{row[name]:.4f}" for name in names]


def _pairs_table(data: Report) -> Table:
    caption = (
        f"{data['pairs']} pairs, {data['duplicates']} duplicates; "
        f"AP {data['average_precision']:.4f}, ROC-AUC {data['roc_auc']:.4f}"
    )
    names = ("threshold", "accuracy", "f1", "precision", "recall")
    table = _new_table(f"Pairs: {data['file']}", caption, [""], ["threshold", "accuracy", "F1", "precision", "recall"])
    for label, key in (("in force", "at_threshold"), ("best F1", "best_f1"), ("best accuracy", "best_accuracy")):
        table.add_row(label, *_figures(data[key], names))
    return table


def _retrieval_table(data: Report) -> Table:
    caption = f"{data['queries']} queries, {data['questions']} questions"
    table = _new_table(f"Retrieval: {data['file']}", caption, ["metric"], ["value"])
    for name, value in data.items():
        if "@" in name:
            table.add_row(name, f"{value:.4f}")
    return table


def _mining_table(data: Report) -> Table:
    caption = (
        f"{data['questions']} questions, {data['gold_pairs']} gold pairs, {data['candidates']} candidates "
        f"(top {data['top_k']}); AP {data['average_precision']:.4f}"
    )
    names = ("threshold", "pairs", "precision", "recall", "f1")
    table = _new_table(f"Mining: {data['file']}", caption, [""], ["threshold", "pairs", "precision", "recall", "F1"])
    for label, key in (("in force", "at_threshold"), ("best F1", "best_f1")):
        table.add_row(label, *_figures(data[key], names))
    return table


def _reranked_table(data: Report) -> Table:
    caption = (
        f"{data['gold']} gold duplicate pairs; AP {data['average_precision']:.4f} "
        f"(pairs the bi-encoder did not propose count as missed)"
    )
    table = _new_table(
        f"Re-ranked {data['task']}: {data['file']}",
        caption,
        ["stage"],
        ["threshold", "pairs", "precision", "recall", "F1"],
    )
    gold, candidates = data["gold"], data["candidates"]
    found = data["candidate_recall"] * gold
    precision = found / candidates if candidates else 0.0
    recall = data["candidate_recall"]
    f1 = f1_score(found, candidates, gold)
    table.add_row(
        "bi-encoder candidates",
        f"{data['candidate_threshold']:.4f}",
        str(candidates),
        f"{precision:.4f}",
        f"{recall:.4f}",
        f"{f1:.4f}",
    )
    names = ("threshold", "pairs", "precision", "recall", "f1")
    table.add_row("re-ranked, in force", *_figures(data["at_threshold"], names))
    table.add_row("re-ranked, best F1", *_figures(data["best_f1"], names))
    return table


def _calibration_table(data: Report) -> Table:
    caption = f"stored in {data['stored']}" if data["stored"] else "not stored"
    names = ("threshold", "f1", "precision", "recall")
    table = _new_table(
        f"Calibration: {data['model']}", caption, ["kind", "file"], ["threshold", "F1", "precision", "recall"]
    )
    for kind, calibration in data["calibration"].items():
        table.add_row(kind, calibration["source"], *_figures(calibration, names))
    return table
