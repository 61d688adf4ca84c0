"""Whether what a result keeps of its input can be written in the output's format, checked right after reading:
a column the format cannot hold is a one-line error naming it, before any encoding, not a failure at the end."""

from __future__ import annotations

import io
from collections.abc import Mapping

import pandas as pd

from dupfind.errors import DupfindError
from dupfind.io.write import _write_chunks

PROBE_ROWS = 100  # rows of each column written to memory (Parquet and TSV look at every value where it matters)

_BREAKS = {"tsv": ("TSV", "a tab or line break", "\t\r\n"), "txt": ("a text file", "a line break", "\r\n")}


def check_writable_columns(columns: Mapping[str, pd.Series], fmt: str, output: str | None, source: str) -> None:
    """Fail when a column of `source` (its values as the result will hold them, indexed by their row numbers)
    cannot be written as `fmt` to `output` (None or `-`: stdout). Parquet converts each whole column of objects
    to Arrow (a column has one type) and writes the first rows; TSV and text look for tabs and line breaks in
    every text; CSV, JSONL and JSON write the first rows. A table or an HTML page holds anything."""
    where = "stdout" if output in (None, "-") else output
    for name, values in columns.items():
        if fmt == "parquet":
            _check_parquet(name, values, where, source)
        elif fmt in _BREAKS:
            _check_breaks(name, values, fmt, source)
        elif fmt in ("csv", "jsonl", "json"):
            try:
                _write_chunks([values.head(PROBE_ROWS).to_frame(name)], fmt, io.StringIO(), output)
            except (ValueError, TypeError, OverflowError) as exc:
                raise DupfindError(f"{where}: column '{name}' of {source} cannot be written as {fmt} ({exc})") from exc


def _check_parquet(name: str, values: pd.Series, where: str, source: str) -> None:
    import pyarrow
    import pyarrow.parquet as pq

    whole = values if values.dtype == object else values.head(PROBE_ROWS)
    try:
        table = pyarrow.Table.from_pandas(whole.to_frame(name), preserve_index=False)
        pq.write_table(table.slice(0, PROBE_ROWS), io.BytesIO())
    except (pyarrow.ArrowException, ValueError, TypeError, OverflowError) as exc:
        reason = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        raise DupfindError(
            f"{where}: column '{name}' of {source} cannot be written as Parquet ({reason.splitlines()[0]}); "
            "a Parquet column has one type: write csv, jsonl or json instead"
        ) from exc


def _check_breaks(name: str, values: pd.Series, fmt: str, source: str) -> None:
    kind, what, breaks = _BREAKS[fmt]
    if any(char in name for char in breaks) and fmt == "tsv":
        raise DupfindError(f"{source}: the column name '{name}' holds {what}, which {kind} cannot hold")
    texts = values.tolist()
    try:
        joined = "".join(texts)
    except TypeError:  # not only texts
        texts = [value if isinstance(value, str) else "" for value in texts]
        joined = "".join(texts)
    if not any(char in joined for char in breaks):  # the common case, at the speed of a scan
        return
    for row, text in zip(values.index, texts, strict=True):
        if any(char in text for char in breaks):
            raise DupfindError(
                f"{source}: row {row}: column '{name}' holds {what}, which {kind} cannot hold; "
                "write csv, jsonl, json or parquet instead"
            )
