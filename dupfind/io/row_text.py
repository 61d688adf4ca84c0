"""The text of a table's rows as read, to write back exactly, with columns added after the input's own (what
`dupfind clusters` adds): more fields at the end of the header and of each CSV or TSV row, more members at the end
of each JSON object; every other character stays as it was."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from dupfind.io.cells import cell_text, json_text

if TYPE_CHECKING:
    import pandas as pd

    from dupfind.io.read import Table

_JSON_SPACE = " \t\n\r"
_LINE_END = "\r\n"


def rows_text(table: Table, chosen: NDArray[np.int64], added: pd.DataFrame | None = None) -> str:
    """The text of the rows at `chosen` (sorted positions) with the text around them that is kept: the header and
    the lines that are not rows (blank lines, the brackets of a JSON array). `added`: columns to add, one row
    for each row of the table."""
    pieces, head = table.pieces, table.gaps[0]
    if added is not None:
        pieces, head = _with_columns(table, added)
    if table.fmt == "json":
        separator = table.gaps[1] if len(pieces) > 1 else ","
        return head + separator.join(pieces[i] for i in chosen) + table.gaps[-1]
    keep = np.zeros(len(pieces), dtype=bool)
    keep[chosen] = True
    parts = [head]
    for piece, gap, kept in zip(pieces, table.gaps[1:], keep.tolist(), strict=True):
        parts.extend((piece, gap) if kept else (gap,))
    return "".join(parts)


def _with_columns(table: Table, added: pd.DataFrame) -> tuple[list[str], str]:
    """Each row's text with the added columns' values, and the text before the first row (its header, for CSV
    and TSV, with their names)."""
    names = [str(name) for name in added.columns]
    rows = list(zip(*(added[name].tolist() for name in added.columns), strict=True))
    if table.fmt in ("jsonl", "json"):
        pieces = [_with_members(piece, names, row) for piece, row in zip(table.pieces, rows, strict=True)]
        return pieces, table.gaps[0]
    fields = _fields_text(table)
    short = table.frame.isna().sum(axis=1).tolist()  # a row's missing last fields: None, never read from the text
    pieces = [
        _with_fields(piece, table.delimiter * missing + fields(row))
        for piece, row, missing in zip(table.pieces, rows, short, strict=True)
    ]
    return pieces, _with_fields(table.gaps[0], fields(names))


def _fields_text(table: Table) -> Callable[[Sequence[Any]], str]:
    """What writes values as fields to follow a row: each after the delimiter, quoted as CSV needs (TSV has no
    quoting, and its values hold no tab nor line break)."""
    delimiter = table.delimiter
    if table.fmt == "tsv":
        return lambda values: "".join(delimiter + cell_text(value) for value in values)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, quotechar='"', lineterminator=_LINE_END)  # quotes \r and \n

    def fields(values: Sequence[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(["", *(cell_text(value) for value in values)])  # "": the delimiter before the first
        return buffer.getvalue().removesuffix(_LINE_END)

    return fields


def _with_fields(text: str, fields: str) -> str:
    """`text` (a record, or the text up to and with the header) with `fields` before its line ending (and the
    blank lines after it)."""
    body = text.rstrip(_LINE_END)
    return body + fields + text[len(body) :]


def _with_members(piece: str, names: list[str], values: tuple[Any, ...]) -> str:
    """A JSON object's text with members for `values` at its end, before any space there; a JSON Lines string
    stands for {"question": ...}, as it was read."""
    members = ", ".join(
        f"{json.dumps(name, ensure_ascii=False)}: {json_text(value)}" for name, value in zip(names, values, strict=True)
    )
    start, end = len(piece) - len(piece.lstrip(_JSON_SPACE)), len(piece.rstrip(_JSON_SPACE))
    body = piece[start:end]
    if body.startswith('"'):
        body = '{"question": ' + body + "}"
    inside = body[1:-1]
    kept = inside.rstrip(_JSON_SPACE)
    comma = ", " if kept else ""
    return piece[:start] + "{" + kept + comma + members + inside[len(kept) :] + "}" + piece[end:]
