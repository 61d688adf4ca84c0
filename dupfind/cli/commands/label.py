"""`dupfind label`: answer a few questions about candidate pairs of your own file, and get its threshold."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Annotated, Any, Protocol

import typer

from dupfind.cli.app import command
from dupfind.cli.input_options import input_options, read_questions
from dupfind.cli.model_options import EmbedderOptions, embedder_options
from dupfind.cli.options import QuietOption, check_range
from dupfind.cli.output import embedding_progress, info, warn
from dupfind.errors import DupfindError
from dupfind.pairs.mining import DEFAULT_TOP_K
from dupfind.quality.labeling import DEFAULT_WIDTH, Estimate, LabelRows, LabelsWriter, Sampler, is_settled, read_labels

if TYPE_CHECKING:
    from dupfind.io.questions import QuestionReader
    from dupfind.pairs.mining import MinedPairs

DEFAULT_FLOOR = 0.5
ANSWERS = ("y", "n", "s", "u", "q")
HINT = "press y (duplicate), n (not), s (skip), u (undo) or q (quit)"


def candidate_pairs(
    file: str, reader: QuestionReader, embedding: EmbedderOptions, floor: float, top_k: int, quiet: bool
) -> tuple[list[str], list[Any], MinedPairs]:
    """The questions of `file`, their ids, and their pairs with cosine ≥ `floor` (each question's best `top_k`),
    embedded through the embedding cache."""
    from dupfind.pairs.mining import mine_texts

    embedding.resolve()
    questions = read_questions(reader, file, quiet)
    embedder = embedding.load()
    with embedding_progress(embedder, f"Encoding {file}", quiet) as progressing:
        mined = mine_texts(progressing, questions.texts, floor, top_k)
    return questions.texts, questions.ids, mined


@dataclass(frozen=True)
class Prompt:
    """A pair to answer about, with the estimate so far."""

    number: int
    score: float
    id_a: Any
    question_a: str
    id_b: Any
    question_b: str
    estimate: Estimate
    more: int

    def as_dict(self) -> dict[str, object]:
        return {
            "type": "pair",
            "number": self.number,
            "score": round(self.score, 6),
            "id_a": _plain(self.id_a),
            "question_a": self.question_a,
            "id_b": _plain(self.id_b),
            "question_b": self.question_b,
            "estimate": {**self.estimate.as_dict(), "more": self.more},
        }


class Labeler(Protocol):
    """Who answers: `ask` returns y, n, s, u or q, or None at the end of input; `hint` tells them something."""

    def ask(self, prompt: Prompt) -> str | None: ...

    def hint(self, message: str) -> None: ...


class Session:
    """Candidate pairs, the answers so far (in the sampler and the labels file), and the labeling loop."""

    def __init__(
        self,
        texts: list[str],
        ids: list[Any],
        mined: MinedPairs,
        existing: LabelRows,
        writer: LabelsWriter,
        seed: int,
        width: float,
        max_answers: int | None,
    ) -> None:
        self.texts, self.ids, self.writer = texts, ids, writer
        self.width, self.max_answers = width, max_answers
        chosen = distinct_pairs(texts, mined)
        self.left, self.right = mined.left[chosen], mined.right[chosen]
        self.sampler = Sampler(mined.scores[chosen], seed)
        pairs = zip(self.left.tolist(), self.right.tolist(), strict=True)
        index_of = {_key(texts[a], texts[b]): index for index, (a, b) in enumerate(pairs)}
        self.resumed = len(existing)
        for first, second, label, score in zip(
            existing.first, existing.second, existing.labels, existing.scores, strict=True
        ):
            index = index_of.get(_key(first, second))
            if index is None:
                self.sampler.add_outside(score, label)
                continue
            if index in self.sampler.answers:  # a pair labeled twice (a hand-edited file): the later answer holds
                self.sampler.remove(index)
            self.sampler.add(index, label)

    def run(self, labeler: Labeler) -> str:
        """Ask until the range is narrow, --max answers, no pair is left, q, or the end of input; returns which."""
        history: list[tuple[int, int | None]] = []  # this session's answers: (pair, file offset; None: skipped)
        pending: int | None = None
        while True:
            estimate = self.sampler.estimate()
            if self.max_answers is not None and estimate.n >= self.max_answers:
                return "max"
            if is_settled(estimate, self.width):
                return "narrow"
            index = pending if pending is not None else self.sampler.next()
            if index is None:
                return "no pair left"
            pending = index
            answer = labeler.ask(self.prompt(index, estimate))
            if answer is None:
                return "end of input"
            if answer == "q":
                return "quit"
            if answer == "u":
                if not history:
                    labeler.hint("nothing to undo in this session")
                    continue
                pending, offset = history.pop()
                if offset is None:
                    self.sampler.unskip(pending)
                else:
                    self.writer.truncate(offset)
                    self.sampler.remove(pending)
                continue
            if answer == "s":
                self.sampler.skip(index)
                history.append((index, None))
            else:
                a, b = int(self.left[index]), int(self.right[index])
                score = float(self.sampler.scores[index])
                history.append((index, self.writer.append(self.texts[a], self.texts[b], answer == "y", score)))
                self.sampler.add(index, answer == "y")
            pending = None

    def prompt(self, index: int, estimate: Estimate) -> Prompt:
        a, b = int(self.left[index]), int(self.right[index])
        more = estimate.more_needed(self.width) if self.width > 0 else 0
        score = float(self.sampler.scores[index])
        return Prompt(estimate.n + 1, score, self.ids[a], self.texts[a], self.ids[b], self.texts[b], estimate, more)


def distinct_pairs(texts: list[str], mined: MinedPairs) -> list[int]:
    """The positions in `mined` of the pairs to ask about: each pair of texts once, none of identical texts."""
    from dupfind.pairs.identical import normalize_text

    seen: dict[tuple[str, str], int] = {}
    for position, (a, b) in enumerate(zip(mined.left.tolist(), mined.right.tolist(), strict=True)):
        if normalize_text(texts[a]) != normalize_text(texts[b]):
            seen.setdefault(_key(texts[a], texts[b]), position)
    return list(seen.values())


def _key(first: str, second: str) -> tuple[str, str]:
    return (first, second) if first <= second else (second, first)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _plain(value: Any) -> Any:
    """An id as JSON can hold it (numpy scalars as Python numbers)."""
    return value.item() if hasattr(value, "item") else value


def describe(estimate: Estimate, width: float, more: int) -> str:
    """The estimate in one line."""
    counts = f"{_count(estimate.n, 'answer')} ({_count(estimate.duplicates, 'duplicate')})"
    if estimate.threshold != estimate.threshold:  # NaN: no estimate yet
        return f"{counts}: no threshold yet (it needs a duplicate and a non-duplicate)"
    line = (
        f"{counts}: threshold {estimate.threshold:.3f} (90% range {estimate.low:.3f}–{estimate.high:.3f}), "
        f"F1 {estimate.f1:.2f} ({estimate.f1_low:.2f}–{estimate.f1_high:.2f})"
    )
    if is_settled(estimate, width):
        line += "; the range is narrow"
    elif width > 0:
        line += f"; about {more} more to narrow the range to {width:.3f}"
    return line


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
    texts, ids, mined = candidate_pairs(file, reader, embedding, floor, top_k, quiet)
    if len(mined) == 0:
        raise DupfindError(f"{file}: no pair of questions has cosine ≥ {floor:.3f}; lower --floor")
    writer = LabelsWriter(output)
    try:
        session = Session(texts, ids, mined, existing, writer, seed, width, max_answers)
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
    check_destination(output, [file])
