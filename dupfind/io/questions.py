"""The questions of a table: which column holds them, their ids, and the blank ones skipped
(`QuestionReader` carries the reader options of every command)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.io.read import _NOT_TEXT, Table, _is_missing, read_rows

TEXT_COLUMN_NAMES = ("question", "text", "title", "body")


_WHERE = {"jsonl": "line", "txt": "line", "json": "element"}  # what a row number counts; else "row"


@dataclass
class Questions:
    """The questions of one input: the whole table, plus the ids and texts of its non-blank rows."""

    source: str
    frame: pd.DataFrame
    text_col: str
    ids: list[Any]
    texts: list[str]
    rows: NDArray[np.int64] = field(repr=False)
    skipped_blank: int = 0
    skipped_bad_lines: int = 0
    table: Table | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.texts)


def load_questions(
    source: str,
    fmt: str | None = None,
    text_col: str | None = None,
    id_col: str | None = None,
    encoding: str = "utf-8",
    skip_bad_lines: bool = False,
    delimiter: str | None = None,
) -> Questions:
    """Read a table and pick out its questions; blank questions are skipped and counted.

    Ids come from `id_col` (exact: strings or integers; a missing id is `pd.NA`), else each row's number
    as a person counts it (see `Table`).
    """
    return questions_from_table(source, read_rows(source, fmt, encoding, skip_bad_lines, delimiter), text_col, id_col)


def questions_from_table(
    source: str, table: Table, text_col: str | None = None, id_col: str | None = None
) -> Questions:
    """The questions of a table already read (by `read_rows`, or by the Ray engine's readers)."""
    frame = table.frame
    if frame.empty or len(frame.columns) == 0:
        raise DupfindError(f"{source}: the input has no rows")
    column = pick_text_column(source, frame, text_col)
    if id_col is not None and id_col not in frame.columns:
        raise DupfindError(f"{source}: no id column '{id_col}' (columns: {_list(frame.columns)})")
    values = frame[column].tolist()
    for row, value in enumerate(values):
        kind = _NOT_TEXT.get(type(value)) or next((k for t, k in _NOT_TEXT.items() if isinstance(value, t)), None)
        if kind is not None:
            where = f"{_WHERE.get(table.fmt, 'row')} {table.numbers[row]}"
            raise DupfindError(
                f"{source}: {where}: column '{column}' holds {kind}, not text; pick the question column with --text-col"
            )
    texts_all = ["" if _is_missing(value) else str(value) for value in values]
    keep = np.array([i for i, text in enumerate(texts_all) if text.strip()], dtype=np.int64)
    if len(keep) == 0:
        raise DupfindError(f"{source}: column '{column}' holds no non-blank questions")
    if id_col is not None:
        ids_all = [pd.NA if _is_missing(value) else value for value in frame[id_col].tolist()]
    else:
        ids_all = list(table.numbers)
    ids = [ids_all[i] for i in keep]
    texts = [texts_all[i] for i in keep]
    return Questions(source, frame, column, ids, texts, keep, len(frame) - len(keep), table.bad_lines, table)


def pick_text_column(source: str, frame: pd.DataFrame, text_col: str | None) -> str:
    """The question column: the one named, else a conventional name, else the only text column."""
    columns = [str(column) for column in frame.columns]
    if text_col is not None:
        if text_col not in columns:
            raise DupfindError(f"{source}: no column '{text_col}' (columns: {_list(columns)})")
        return text_col
    by_lower = {column.lower(): column for column in columns}
    for name in TEXT_COLUMN_NAMES:
        if name in by_lower:
            return by_lower[name]
    textual = [column for column in columns if _looks_textual(frame[column])]
    if len(textual) == 1:
        return textual[0]
    reason = "several text columns" if textual else "no text column"
    raise DupfindError(f"{source}: {reason}; pick one with --text-col (columns: {_list(columns)})")


def _looks_textual(values: pd.Series) -> bool:
    sample = [str(value) for value in values.head(200) if not _is_missing(value) and str(value).strip()]
    if not sample:
        return False
    numeric = sum(bool(re.fullmatch(r"[-+]?[\d.,:eE/ -]+", value)) for value in sample)
    return numeric < len(sample) / 2


def _list(columns: Any) -> str:
    return ", ".join(str(column) for column in columns)


@dataclass(frozen=True)
class QuestionReader:
    """How to read question files: the same input options for every file a command reads."""

    text_col: str | None = None
    id_col: str | None = None
    format_in: str | None = None
    encoding: str = "utf-8"
    skip_bad_lines: bool = False
    delimiter: str | None = None

    def load(self, source: str) -> Questions:
        """The questions of a file (or `-`, stdin)."""
        return load_questions(
            source, self.format_in, self.text_col, self.id_col, self.encoding, self.skip_bad_lines, self.delimiter
        )


def id_column(ids: Sequence[Any]) -> pd.Series:
    """Ids as a column: int64 when all are integers, else objects as they are (never floats made of integers)."""
    column = pd.Series(list(ids))
    if column.dtype.kind == "f" and not all(isinstance(value, float) for value in ids):
        return pd.Series(list(ids), dtype=object)
    return column
