"""The options that say how to read input files: `input_options` hands a command a `QuestionReader` (question
files), `table_options` a `TableReader` (labeled files, whose columns the command names itself)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dupfind.cli.options import (
    DelimiterOption,
    EncodingOption,
    FormatInOption,
    IdColOption,
    SkipBadLinesOption,
    TextColOption,
    add_options,
)
from dupfind.cli.output import report_input, stage

if TYPE_CHECKING:
    import pandas as pd

    from dupfind.io.questions import QuestionReader, Questions


@dataclass(frozen=True)
class TableReader:
    """How to read a table: the reader options of every command, bar the question and id columns."""

    format_in: str | None = None
    encoding: str = "utf-8"
    skip_bad_lines: bool = False
    delimiter: str | None = None

    def read(self, source: str) -> tuple[pd.DataFrame, int]:
        """The table of a file (or `-`, stdin), and how many malformed lines were skipped."""
        from dupfind.io.read import read_table

        return read_table(source, self.format_in, self.encoding, self.skip_bad_lines, self.delimiter)


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


_TABLE_OPTIONS: dict[str, tuple[Any, Any]] = {
    "format_in": (FormatInOption, None),
    "encoding": (EncodingOption, "utf-8"),
    "skip_bad_lines": (SkipBadLinesOption, False),
    "delimiter": (DelimiterOption, None),
}

input_options = add_options(
    "reader", {"text_col": (TextColOption, None), "id_col": (IdColOption, None), **_TABLE_OPTIONS}, _reader
)
"""Adds the options that say how to read question files; the command receives `reader: QuestionReader`."""

table_options = add_options("table", _TABLE_OPTIONS, TableReader)
"""Adds the options that say how to read a table; the command receives `table: TableReader`."""


def read_questions(reader: QuestionReader, source: str, quiet: bool) -> Questions:
    """Read a question file with the command's input options, and say what was read."""
    with stage("read"):
        questions = reader.load(source)
    report_input(questions, quiet)
    return questions


def read_frame(table: TableReader, source: str) -> tuple[pd.DataFrame, int]:
    """Read a table with the command's input options; returns it and the malformed lines skipped."""
    with stage("read"):
        return table.read(source)
