"""`dupfind label`: answer a few questions about candidate pairs of your own file, and get its threshold."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Annotated

import typer

from dupfind.cli.app import command
from dupfind.cli.input_options import input_options, read_questions
from dupfind.cli.model_options import EmbedderOptions, embedder_options
from dupfind.cli.options import QuietOption, check_range
from dupfind.cli.output import embedding_progress, info, warn
from dupfind.errors import DupfindError
from dupfind.pairs.mining import DEFAULT_TOP_K
from dupfind.quality.labeling import (
    ANSWERS,
    DEFAULT_FLOOR,
    DEFAULT_WIDTH,
    LabelsWriter,
    Prompt,
    Session,
    candidate_pairs,
    describe,
    read_labels,
)

if TYPE_CHECKING:
    from dupfind.io.questions import QuestionReader, Questions
    from dupfind.pairs.mining import MinedPairs

HINT = "press y (duplicate), n (not), s (skip), u (undo) or q (quit)"


def _candidates(
    file: str, reader: QuestionReader, embedding: EmbedderOptions, floor: float, top_k: int, quiet: bool
) -> tuple[Questions, MinedPairs]:
    """The questions of `file` and their candidate pairs, embedded through the embedding cache."""
    embedding.resolve()
    questions = read_questions(reader, file, quiet)
    with embedding_progress(embedding.load(), f"Encoding {file}", quiet) as embedder:
        return questions, candidate_pairs(embedder, questions.texts, floor, top_k)


class LineLabeler:
    """The line protocol: each pair one JSON object on stdout (flushed), one answer line read from stdin."""

    def __init__(self, stdin: IO[str], stdout: IO[str], width: float, quiet: bool) -> None:
        self.stdin, self.stdout, self.width, self.quiet = stdin, stdout, width, quiet

    def ask(self, prompt: Prompt) -> str | None:
        info(describe(prompt.estimate, self.width, prompt.more), self.quiet)
        while True:
            self.stdout.write(json.dumps(prompt.as_dict(), ensure_ascii=False) + "\n")
            self.stdout.flush()
            line = self.stdin.readline()
            if not line:
                return None
            answer = line.strip().lower()
            if answer in ANSWERS:
                return answer
            self.hint(f"'{answer[:40]}' is not an answer: send y, n, s, u or q, one a line")

    def hint(self, message: str) -> None:
        print(f"dupfind: {message}", file=sys.stderr, flush=True)


class TerminalLabeler:
    """A keyboard-driven screen on a terminal: the pair side by side, one key per answer, no Enter."""

    def __init__(self, labels: str, width: float) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.labels, self.width = labels, width
        self.message = ""
        self.fd = sys.stdin.fileno()

    @contextmanager
    def keys(self) -> Iterator[None]:
        """Single keypresses without Enter or echo; the terminal is restored however this ends."""
        import termios
        import tty

        saved = termios.tcgetattr(self.fd)
        try:
            tty.setcbreak(self.fd)
            yield
        finally:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)

    def ask(self, prompt: Prompt) -> str | None:
        while True:
            self._draw(prompt)
            self.message = ""
            key = os.read(self.fd, 32).decode("utf-8", "replace")
            if key in ("", "\x04"):  # end of input, Ctrl-D
                return None
            answer = key.strip().lower()
            if answer in ANSWERS:
                return answer
            self.message = f"{key!r} is not an answer: {HINT}"

    def hint(self, message: str) -> None:
        self.message = message

    def _draw(self, prompt: Prompt) -> None:
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        sides = Table.grid(expand=True, padding=(0, 1))
        sides.add_column(ratio=1)
        sides.add_column(ratio=1)
        sides.add_row(
            Panel(Text(prompt.question_a), title=f"id {prompt.id_a}", title_align="left"),
            Panel(Text(prompt.question_b), title=f"id {prompt.id_b}", title_align="left"),
        )
        console = self.console
        console.clear()
        console.print(Text.assemble(("dupfind label", "bold"), f" · pair {prompt.number} · {self.labels}"))
        console.print(sides)
        console.print(Text.assemble("score ", (f"{prompt.score:.3f}", "bold")))
        console.print(Text(describe(prompt.estimate, self.width, prompt.more)))
        if self.message:
            console.print(Text(self.message, style="yellow"))
        console.print(Text("y duplicate · n not · s skip · u undo · q quit", style="bold"))


@command("label")
@input_options
@embedder_options
def label(
    file: Annotated[str, typer.Argument(help="Your questions: CSV, TSV, JSONL, JSON, Parquet or text.")],
    reader: QuestionReader,
    embedding: EmbedderOptions,
    output: Annotated[
        str, typer.Option("--output", "-o", help="Labels file (CSV), appended to at each answer; resumed if it exists.")
    ],
    floor: Annotated[
        float, typer.Option("--floor", help="Candidate pairs are those with cosine at least this.")
    ] = DEFAULT_FLOOR,
    top_k: Annotated[
        int, typer.Option("--top-k", "-k", help="Candidate neighbours kept per question.")
    ] = DEFAULT_TOP_K,
    width: Annotated[
        float, typer.Option("--width", help="Stop when the threshold's 90% range is this narrow (0: never).")
    ] = DEFAULT_WIDTH,
    max_answers: Annotated[
        int | None, typer.Option("--max", help="Stop at this many answers in the labels file.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the choice of pairs.")] = 0,
    quiet: QuietOption = False,
) -> None:
    """Label the candidate pairs that most move the threshold, and get the threshold with its range.

    On a terminal: one key per pair (y duplicate, n not, s skip, u undo, q quit). Otherwise each pair is a JSON
    line on stdout and each answer a line on stdin; the last line is the result. Answers go to the labels file
    at once, so a later run resumes; `dupfind calibrate --pairs` reads it.

    Example: dupfind label questions.csv -o labels.csv
    """
    _check_options(file, output, floor, top_k, width, max_answers)
    existing = read_labels(output)
    questions, mined = _candidates(file, reader, embedding, floor, top_k, quiet)
    texts = questions.texts
    if len(mined) == 0:
        raise DupfindError(f"{file}: no pair of questions has cosine ≥ {floor:.3f}; lower --floor")
    writer = LabelsWriter(output)
    try:
        session = Session(texts, questions.ids, mined, existing, writer, seed, width, max_answers)
        pairs = len(session.left)
        info(f"{pairs} candidate pairs with cosine ≥ {floor:.3f} among {len(texts)} questions", quiet)
        if session.resumed:
            info(f"Resuming: {session.resumed} answers already in {output}", quiet)
        if sys.stdin.isatty():
            terminal = TerminalLabeler(output, width)
            with terminal.keys():
                stopped = session.run(terminal)
        else:
            stopped = session.run(LineLabeler(sys.stdin, sys.stdout, width, quiet))
    finally:
        writer.close()
    estimate = session.sampler.estimate()
    info(describe(estimate, width, estimate.more_needed(width) if width > 0 else 0), quiet)
    for message in estimate.warnings:
        warn(message)
    result = {"type": "result", "stopped": stopped, "labels": output, **estimate.as_dict()}
    print(json.dumps(result, ensure_ascii=False), flush=True)


def _check_options(file: str, output: str, floor: float, top_k: int, width: float, max_answers: int | None) -> None:
    check_range("--floor", floor, -1, 1)
    check_range("--top-k", top_k, 1)
    check_range("--width", width, 0)
    check_range("--max", max_answers, 1)
    from dupfind.io.destinations import check_destination

    if not output.lower().endswith(".csv"):
        raise DupfindError(f"{output}: the labels file is CSV; give a name ending in .csv")
    check_destination(output, [file], appended=True)
