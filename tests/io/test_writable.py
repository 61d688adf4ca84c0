"""`check_writable_columns`: a column the output format cannot hold is found before any work, by name and row."""

from __future__ import annotations

import pandas as pd
import pytest

from dupfind.errors import DupfindError
from dupfind.io.writable import check_writable_columns


def column(*values: object) -> pd.Series:
    return pd.Series(list(values), index=[10 + i for i in range(len(values))], dtype=object)


@pytest.mark.parametrize(
    ("values", "fmt", "message"),
    [
        (column(1, "a"), "parquet", r"out: column 'q' of in\.csv cannot be written as Parquet \(.*'a'"),
        (column("a", None, {"k": 1}, "b\tc"), "tsv", r"in\.csv: row 13: column 'q' holds a tab or line break"),
        (column("a", "b\rc"), "txt", r"in\.csv: row 11: column 'q' holds a line break, which a text file"),
    ],
)
def test_what_a_format_cannot_hold_is_named(values: pd.Series, fmt: str, message: str) -> None:
    with pytest.raises(DupfindError, match=message):
        check_writable_columns({"q": values}, fmt, "out", "in.csv")


@pytest.mark.parametrize("fmt", ["parquet", "tsv", "txt", "csv", "jsonl", "json", "table", "html"])
def test_what_a_format_holds_passes(fmt: str) -> None:
    check_writable_columns({"q": column("a b", None, "c"), "n": pd.Series([1, 2, 3])}, fmt, None, "in.csv")
    if fmt in ("csv", "jsonl", "json", "table", "html"):
        check_writable_columns({"q": column(1, "a\tb", {"k": [1]})}, fmt, None, "in.csv")
