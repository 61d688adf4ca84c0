"""The options that say how to read question files: `input_options` hands a command a `QuestionReader`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dupfind.cli.options import (
    DelimiterOption,
    EncodingOption,
    FormatInOption,
    TextColOption,
    add_options,
)
from dupfind.cli.output import report_input, stage

if TYPE_CHECKING:
    from dupfind.io.questions import QuestionReader, Questions


def _reader(
    text_col: str | None,
    id_col: str | None,
    format_in: str | None,
    encoding: str,
    skip_bad_lines: bool,
    delimiter: str | None,
) -> QuestionReader:
    from dupfind.io.questions import QuestionReader

    return QuestionReader(text_col, id_col, format_in, encoding, skip_bad_lines, delimiter)


input_options = add_options(
    "reader",
    {
        "text_col": (TextColOption, None),
        "id_col": (
            Annotated[str | None, typer.Option("--id-col", help="Id column [default: 1-based row number].")],
            None,
        ),
        "format_in": (FormatInOption, None),
        "encoding": (EncodingOption, "utf-8"),
        "skip_bad_lines": (
            Annotated[bool, typer.Option("--skip-bad-lines", help="Skip malformed JSONL lines.")],
            False,
        ),
        "delimiter": (DelimiterOption, None),
    },
    _reader,
)


"""Adds the options that say how to read question files; the command receives `reader: QuestionReader`."""


def read_questions(reader: QuestionReader, source: str, quiet: bool) -> Questions:
    """Read a question file with the command's input options, and say what was read."""
    with stage("read"):
        questions = reader.load(source)
    report_input(questions, quiet)
    return questions
