"""The reports of `eval` and `calibrate`: a JSON file, JSON or JSONL on stdout, or a table on a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dupfind.errors import DupfindError
from dupfind.quality.evaluation.curve import f1_score

if TYPE_CHECKING:
    from rich.table import Table

Report = dict[str, Any]
REPORT_FORMATS = ("table", "json", "jsonl")

ReportOutputOption = Annotated[str | None, typer.Option("--output", "-o", help="Write the report to this JSON file.")]
ReportFormatOption = Annotated[
    str | None, typer.Option("--format", "-f", help="table, json or jsonl [default: table on a terminal, else jsonl].")
]


def report_format(output: str | None, fmt: str | None) -> str | None:
    """`--format`, else nothing on stdout when writing a file, else a table to a terminal and JSONL to a pipe."""
    if fmt is not None:
        if fmt not in REPORT_FORMATS:
            raise DupfindError(f"unknown report format '{fmt}' (choose from {', '.join(REPORT_FORMATS)})")
        return fmt
    if output is not None:
        return None
    return "table" if sys.stdout.isatty() else "jsonl"


def page_output(output: str | None, fmt: str | None) -> str | None:
    """Where a report's HTML page goes (`-`: stdout): with --format html to -o or stdout, else to -o FILE.html;
    None: no page."""
    from dupfind.io.formats import format_from_path

    if fmt == "html":
        return output or "-"
    if output is not None and format_from_path(output, output=True) == "html":
        return output
    return None


def emit(data: Report, fmt: str | None, output: str | None, table: Callable[[Report], Table]) -> None:
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


def pairs_table(data: Report) -> Table:
    """`eval pairs`: in force, best F1 and best accuracy."""
    caption = (
        f"{data['pairs']} pairs, {data['duplicates']} duplicates; "
        f"AP {data['average_precision']:.4f}, ROC-AUC {data['roc_auc']:.4f}"
    )
    names = ("threshold", "accuracy", "f1", "precision", "recall")
    table = _new_table(f"Pairs: {data['file']}", caption, [""], ["threshold", "accuracy", "F1", "precision", "recall"])
    for label, key in (("in force", "at_threshold"), ("best F1", "best_f1"), ("best accuracy", "best_accuracy")):
        table.add_row(label, *_figures(data[key], names))
    return table


def retrieval_table(data: Report) -> Table:
    """`eval retrieval`: each metric@k."""
    caption = f"{data['queries']} queries, {data['questions']} questions"
    table = _new_table(f"Retrieval: {data['file']}", caption, ["metric"], ["value"])
    for name, value in data.items():
        if "@" in name:
            table.add_row(name, f"{value:.4f}")
    return table


def mining_table(data: Report) -> Table:
    """`eval mining`: in force and best F1."""
    caption = (
        f"{data['questions']} questions, {data['gold_pairs']} gold pairs, {data['candidates']} candidates "
        f"(top {data['top_k']}); AP {data['average_precision']:.4f}"
    )
    names = ("threshold", "pairs", "precision", "recall", "f1")
    table = _new_table(f"Mining: {data['file']}", caption, [""], ["threshold", "pairs", "precision", "recall", "F1"])
    for label, key in (("in force", "at_threshold"), ("best F1", "best_f1")):
        table.add_row(label, *_figures(data[key], names))
    return table


def reranked_table(data: Report) -> Table:
    """`eval pairs|mining --rerank`: the bi-encoder's candidates, then the re-ranker's decisions."""
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


def calibration_table(data: Report) -> Table:
    """`calibrate`: the threshold found on each file."""
    caption = f"stored in {data['stored']}" if data["stored"] else "not stored"
    names = ("threshold", "f1", "precision", "recall")
    table = _new_table(
        f"Calibration: {data['model']}", caption, ["kind", "file"], ["threshold", "F1", "precision", "recall"]
    )
    for kind, calibration in data["calibration"].items():
        table.add_row(kind, calibration["source"], *_figures(calibration, names))
    return table
