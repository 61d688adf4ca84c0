"""Values as the writers write them: JSON-ready values (exact integers, shortest round-trip floats, times in ISO
format to the last digit), and the text of a CSV or TSV cell, where a nested value is its JSON text."""

from __future__ import annotations

import datetime
import json
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from dupfind.io.read import _ABSENT, _NOT_TEXT, _is_missing

_NOT_PLAIN = tuple(_NOT_TEXT)  # lists, structs, maps and bytes: no text of their own in a CSV cell


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as JSON-ready dicts with exact values (`json_value`); keys a JSON input row lacked are left out."""
    absent: dict[str, NDArray[np.int64]] = frame.attrs.get(_ABSENT, {})
    columns = [str(column) for column in frame.columns]
    values = [json_values(frame.iloc[:, i]) for i in range(len(columns))]
    rows = [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]
    for column, labels in absent.items():
        if column in frame.columns:
            for position in np.flatnonzero(frame.index.isin(labels)).tolist():
                del rows[position][column]
    return rows


def json_values(series: pd.Series) -> list[Any]:
    """A column's values as `json_value` makes them (float32 and float16 by their shortest text, not widened)."""
    if series.dtype in (np.float32, np.float16):
        return [None if np.isnan(value) else float(str(value)) for value in series.to_numpy()]
    return [json_value(value) for value in series.tolist()]


def json_value(value: Any) -> Any:
    """A value as JSON holds it: nulls as None, integers exact, floats as they are (JSON's shortest text), dates,
    times and durations in ISO format, structs and maps as objects and lists in their order, bytes as UTF-8
    text (bytes that are not UTF-8 as `\\xNN` escapes), anything else (decimals) as its text."""
    if _is_missing(value):
        return None
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.generic):
        return json_value(value.item())
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return pd.Timedelta(value).isoformat()
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_value(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="backslashreplace")
    return str(value)


def json_text(value: Any) -> str:
    """A value's JSON text (`json_value`), non-ASCII characters as they are."""
    return json.dumps(json_value(value), ensure_ascii=False)


def cell_text(value: Any) -> str:
    """A value's text in a CSV or TSV cell: empty for a null, the JSON text of a list, struct or map, bytes as
    `json_value` writes them, else the value's own text."""
    if _is_missing(value):
        return ""
    if isinstance(value, (bytes, bytearray)):
        return str(json_value(value))
    if isinstance(value, _NOT_PLAIN):
        return json_text(value)
    return str(value)


def text_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its nested values and bytes as their cell text (`cell_text`), nulls as nulls; every other
    value is left to the CSV writer."""
    cells = frame.copy(deep=False)
    for position in range(len(frame.columns)):
        column = frame.iloc[:, position]
        if column.dtype != object and not isinstance(column.dtype, pd.ArrowDtype):
            continue
        values = column.tolist()
        if any(isinstance(value, _NOT_PLAIN) for value in values):
            texts = [None if _is_missing(value) else cell_text(value) for value in values]
            cells.isetitem(position, np.array(texts, dtype=object))
    return cells
