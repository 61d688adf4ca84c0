"""What every command shares: the Typer app, error handling, stderr messages, progress bars, options."""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from dupfind.encoding import Progress
from dupfind.errors import DupfindError

if TYPE_CHECKING:
    from dupfind.tables import Questions

app = typer.Typer(
    name="dupfind",
    help="Find duplicate questions with sentence embeddings.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)

F = TypeVar("F", bound=Callable[..., Any])

ModelOption = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Local sentence-transformers model directory or hub name [default: built-in]."),
]
BackendOption = Annotated[
    str | None,
    typer.Option("--backend", help="Encoder backend: torch, onnx or openvino [default: fastest exact]."),
]
BatchSizeOption = Annotated[int, typer.Option("--batch-size", help="Texts encoded per batch.")]
NoCacheOption = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the embedding cache.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summaries on stderr.")]
TextColOption = Annotated[str | None, typer.Option("--text-col", help="Question column [default: auto-detected].")]
IdColOption = Annotated[str | None, typer.Option("--id-col", help="Id column [default: 1-based row number].")]
FormatInOption = Annotated[
    str | None, typer.Option("--format-in", help="Input format: csv, tsv, jsonl, json, parquet, txt.")
]
DelimiterOption = Annotated[
    str | None,
    typer.Option("--delimiter", help="CSV field separator [default: sniffed from the header: , ; | or tab]."),
]
EncodingOption = Annotated[str, typer.Option("--encoding", help="Text encoding of the input.")]
SkipBadLinesOption = Annotated[bool, typer.Option("--skip-bad-lines", help="Skip malformed JSONL lines.")]
ThresholdOption = Annotated[
    float | None,
    typer.Option("--threshold", "-t", help="Cosine score from which a pair is a duplicate [default: calibrated]."),
]
OutputOption = Annotated[str | None, typer.Option("--output", "-o", help="Write to this file (format from extension).")]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format", "-f", help="table, csv, tsv, jsonl, json or parquet [default: table on a terminal, else jsonl]."
    ),
]


_state = {"verbose": False}


def _version(show: bool) -> None:
    if show:
        from dupfind import __version__

        print(f"dupfind {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print timings of each stage on stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Find duplicate questions with sentence embeddings, offline.

    Example: dupfind mine questions.csv --limit 20
    """
    _state["verbose"] = verbose


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time a stage of a command; the time is printed on stderr with --verbose."""
    started = time.perf_counter()
    yield
    if _state["verbose"]:
        print(f"dupfind: {name}: {time.perf_counter() - started:.2f} s", file=sys.stderr)


def error(message: str) -> None:
    """One line on stderr."""
    print(f"dupfind: error: {message}", file=sys.stderr)


def info(message: str, quiet: bool = False) -> None:
    """A summary line on stderr (never stdout, which carries only data)."""
    if not quiet:
        print(message, file=sys.stderr)


def warn(message: str) -> None:
    print(f"dupfind: warning: {message}", file=sys.stderr)


def command(name: str, group: typer.Typer | None = None) -> Callable[[F], F]:
    """Register a command (on `group`, else the top level) that turns user errors into one line and exit 2,
    and a closed pipe into a quiet exit."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                result = function(*args, **kwargs)
                sys.stdout.flush()
                return result
            except DupfindError as exc:
                error(str(exc))
                raise typer.Exit(2) from None
            except BrokenPipeError:
                _silence_stdout()
                raise typer.Exit(0) from None
            except KeyboardInterrupt:
                error("interrupted")
                raise typer.Exit(130) from None
            except OSError as exc:
                error(f"cannot write the output: {exc.strerror or exc}")
                _silence_stdout()
                raise typer.Exit(2) from None

        (group or app).command(name)(wrapper)
        return function

    return decorate


def command_group(name: str, help: str) -> typer.Typer:
    """A group of subcommands (`dupfind NAME ...`), registered on the top level."""
    group = typer.Typer(name=name, help=help, no_args_is_help=True, rich_markup_mode=None)
    app.add_typer(group, name=name)
    return group


def _silence_stdout() -> None:
    """After the reader of stdout went away, point stdout at /dev/null so the exit flush does not fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty() and not os.environ.get("DUPFIND_NO_PROGRESS")


@contextmanager
def progress_bar(description: str, quiet: bool) -> Iterator[Progress]:
    """A rich progress bar on stderr, shown only to a terminal and unless quiet; yields `progress(done, total)`."""
    if quiet or not stderr_is_terminal():
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, advance=done, total=total)

        yield advance


def report_input(questions: Questions, quiet: bool) -> None:
    """Say on stderr what was read and what was skipped."""
    skipped = []
    if questions.skipped_blank:
        skipped.append(f"{questions.skipped_blank} blank")
    if questions.skipped_bad_lines:
        skipped.append(f"{questions.skipped_bad_lines} malformed lines")
    if skipped:
        warn(f"{questions.source}: skipped {' and '.join(skipped)}")
    info(f"Read {len(questions)} questions from {questions.source} (column '{questions.text_col}')", quiet)
