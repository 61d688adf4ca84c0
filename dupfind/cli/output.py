"""What the command line says on stderr: messages, warnings, stage timings (-v) and progress bars."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

from dupfind.errors import plain
from dupfind.vectors.encoding import Progress

if TYPE_CHECKING:
    from dupfind.io.questions import Questions
    from dupfind.pairs.rerank import Reranker
    from dupfind.vectors.embedder import Embedder

_state = {"verbose": False, "quiet": False}
_invocation: list[str] = []  # the command as typed, `dupfind` and its arguments (set by `dupfind.cli.app`)

MaybeReranker = TypeVar("MaybeReranker", bound="Reranker | None")


_displays: list[Any] = []  # the progress display on screen, if any


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time a stage of a command; the time is printed on stderr with --verbose."""
    started = time.perf_counter()
    yield
    if _state["verbose"]:
        print(f"dupfind: {name}: {time.perf_counter() - started:.2f} s", file=sys.stderr)


def error(message: str) -> None:
    """One line on stderr, without colour codes."""
    print(f"dupfind: error: {plain(message)}", file=sys.stderr)


def info(message: str, quiet: bool = False) -> None:
    """A summary line on stderr (never stdout, which carries only data); nothing with --quiet."""
    if not (quiet or _state["quiet"]):
        print(message, file=sys.stderr)


def warn(message: str) -> None:
    """A warning line on stderr, without colour codes; nothing with --quiet."""
    if not _state["quiet"]:
        print(f"dupfind: warning: {plain(message)}", file=sys.stderr)


def command_line() -> str:
    """The command being run, as a shell would take it."""
    import shlex

    return shlex.join(_invocation)


def verbose() -> bool:
    """Whether --verbose was given."""
    return _state["verbose"]


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty() and not os.environ.get("DUPFIND_NO_PROGRESS")


@contextmanager
def progress_bar(description: str, quiet: bool) -> Iterator[Progress]:
    """A rich progress bar on stderr, shown only to a terminal and unless quiet; yields `progress(done, total)`.

    Opened while another is shown, it is a second line of the same display (rich shows one at a time).
    """
    if quiet or not stderr_is_terminal():
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Display

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    outer = _displays[-1] if _displays else None
    with (
        contextlib.nullcontext(outer)
        if outer
        else Display(*columns, console=Console(stderr=True), transient=True) as display
    ):
        _displays.append(display)
        task = display.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            display.update(task, advance=done, total=total)

        try:
            yield advance
        finally:
            _displays.pop()
            if outer is not None:
                display.remove_task(task)


def report_skipped(source: str, bad_lines: int, blank: str | None = None) -> None:
    """Warn on stderr about the rows skipped reading `source`: `blank` says how many were blank (None: none), and
    `bad_lines` malformed lines."""
    skipped = [] if blank is None else [blank]
    if bad_lines:
        skipped.append(f"{bad_lines} malformed lines")
    if skipped:
        warn(f"{source}: skipped {' and '.join(skipped)}")


def report_input(questions: Questions, quiet: bool) -> None:
    """Say on stderr what was read and what was skipped."""
    blank = f"{questions.skipped_blank} blank" if questions.skipped_blank else None
    report_skipped(questions.source, questions.skipped_bad_lines, blank)
    info(f"Read {len(questions)} questions from {questions.source} (column '{questions.text_col}')", quiet)


@contextmanager
def rerank_progress(reranker: MaybeReranker, quiet: bool) -> Iterator[MaybeReranker]:
    """The re-ranker (None: no re-ranking) with a progress bar on stderr while the block runs."""
    with progress_bar("Re-ranking", quiet or reranker is None) as progress:
        yield reranker if reranker is None else cast(MaybeReranker, reranker.with_progress(progress))


@contextmanager
def embedding_progress(embedder: Embedder, description: str, quiet: bool) -> Iterator[Embedder]:
    """The embedder with a progress bar on stderr while the block runs."""
    with progress_bar(description, quiet) as progress:
        yield embedder.with_progress(progress)
