"""`dupfind calibrate`: the best-F1 thresholds on labeled data, stored with the model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dupfind.cli.app import command
from dupfind.cli.input_options import table_options
from dupfind.cli.labeled import (
    PAIR_COLUMN_ALIASES,
    CandidatesTopKOption,
    cluster_column_options,
    gold_clusters,
    labeled_pairs,
    pair_column_options,
)
from dupfind.cli.model_options import EmbedderOptions, embedder_options
from dupfind.cli.options import (
    QuietOption,
    check_range,
)
from dupfind.cli.output import embedding_progress, info, stage, warn
from dupfind.cli.reports import ReportFormatOption, calibration_table, emit, report_format
from dupfind.errors import DupfindError
from dupfind.quality.evaluation.labeled import GoldClusters, LabeledPairs
from dupfind.quality.evaluation.mining import MINING_TOP_K

if TYPE_CHECKING:
    from dupfind.cli.input_options import TableReader
    from dupfind.cli.labeled import ClusterColumns, PairColumns
    from dupfind.quality.calibration import Calibration


@command("calibrate", aliases={**PAIR_COLUMN_ALIASES, "--print-only": "--dry-run"})
@embedder_options
@table_options
@pair_column_options
@cluster_column_options
def calibrate(
    embedding: EmbedderOptions,
    table: TableReader,
    pair_columns: PairColumns,
    cluster_columns: ClusterColumns,
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
    output_format: ReportFormatOption = None,
    quiet: QuietOption = False,
) -> None:
    """Find the best-F1 thresholds on labeled data and store them with the model, for `mine` and `compare`.

    Example: dupfind calibrate --pairs train-pairs.csv --questions train-questions.csv --model ./my-model
    """
    from dupfind.io.destinations import check_destination
    from dupfind.quality.calibration import apply, calibrate_all, check_writable, detect_kind, store_calibration
    from dupfind.thresholds import load_thresholds, store_project_thresholds
    from dupfind.vectors.model import THRESHOLDS_FILE

    fmt = report_format(None, output_format)
    check_range("--top-k", top_k, 1)
    ref = embedding.resolve()
    project = None if embedding.thresholds is None else Path(embedding.thresholds).expanduser()
    if project is not None:
        check_destination(str(project))
    elif ref.path is not None and not ref.is_builtin and not dry_run:
        check_writable(ref.path)
    current = (  # read now: a bad thresholds file fails before any work
        embedding.thresholds_for(ref)
        if project is not None and project.is_file()
        else load_thresholds(ref, embedding.precision)
    )
    sources = _calibration_sources(file, kind, pairs_file, questions_file)
    current = (  # a project file is read (and so checked) before anything is
        embedding.thresholds_for(ref)
        if project is not None and project.is_file()
        else load_thresholds(ref, embedding.precision)
    )
    inputs: list[tuple[str, LabeledPairs | GoldClusters]] = []
    with stage("read"):
        frames = [(source, *table.read(source), wanted) for source, wanted in sources]
    kinds = [
        wanted or detect_kind(source, frame.columns, pair_columns, cluster_columns.cluster)
        for source, frame, _, wanted in frames
    ]
    if len(set(kinds)) < len(kinds):
        raise DupfindError("give one file of pairs and one of clustered questions at most")
    for (source, frame, bad_lines, _), kind in zip(frames, kinds, strict=True):
        if kind == "pairs":
            inputs.append((source, labeled_pairs(source, frame, bad_lines, pair_columns, quiet)))
        else:
            inputs.append((source, gold_clusters(source, frame, bad_lines, cluster_columns, quiet)))
    with embedding_progress(embedding.load(), "Encoding", quiet) as embedder, stage("calibrate"):
        calibrations = calibrate_all(embedder, inputs, top_k)
    for calibration in calibrations:
        _report_uncertainty(calibration)
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
    emit({**data, "stored": stored, "calibration": details}, fmt, None, calibration_table)


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
