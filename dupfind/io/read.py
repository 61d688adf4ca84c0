"""Reading tables exactly as they are: CSV, TSV, JSONL, JSON, Parquet and text, from files or stdin, gzipped or
not; a bad line is a one-line error naming the file and line (or is skipped and counted)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.io.formats import INPUT_FORMATS, _sniff_format, format_from_path

if TYPE_CHECKING:
    import pyarrow

_CSV_DELIMITERS = (";", "|", "\t")


_JSON_SPACE = re.compile(r"[ \t\n\r]*")


_ABSENT = "dupfind.absent"  # frame.attrs key: per column, the index labels of JSON rows that lacked the key


_NOT_TEXT: dict[type, str] = {
    dict: "a nested object",
    list: "a list",
    tuple: "a list",
    np.ndarray: "a list",
    bytes: "bytes",
    bytearray: "bytes",
}


@dataclass
class Table:
    """A table as read, with what writes its rows back exactly as they came in.

    `numbers` is each row's number as a person counts it (1-based): the line for JSONL and text, the data
    row for CSV and TSV, the element for a JSON array, the row for Parquet. Text formats keep each row's
    text (`pieces`) and the text around the rows (`gaps[i]` precedes row i, `gaps[-1]` follows the last), and
    CSV and TSV their `delimiter`; Parquet keeps the Arrow table as read.
    """

    fmt: str
    frame: pd.DataFrame
    numbers: list[int]
    encoding: str = "utf-8"
    bad_lines: int = 0
    pieces: list[str] = field(default_factory=list, repr=False)
    gaps: list[str] = field(default_factory=list, repr=False)
    arrow: pyarrow.Table | None = field(default=None, repr=False)
    delimiter: str = ","


def read_table(
    source: str,
    fmt: str | None = None,
    encoding: str = "utf-8",
    skip_bad_lines: bool = False,
    delimiter: str | None = None,
) -> tuple[pd.DataFrame, int]:
    """Read a table from a path or `-` (stdin); returns the frame and the number of bad lines skipped."""
    table = read_rows(source, fmt, encoding, skip_bad_lines, delimiter)
    return table.frame, table.bad_lines


def read_rows(
    source: str,
    fmt: str | None = None,
    encoding: str = "utf-8",
    skip_bad_lines: bool = False,
    delimiter: str | None = None,
    path: str | None = None,
) -> Table:
    """Read a table from a path or `-` (stdin), keeping what writes its rows back unchanged (`write_rows`).

    A CSV's delimiter is `delimiter`, else sniffed from the header line (`,`, else `;`, `|` or tab). `path`: where
    the file is read from when that is not `source`, the name its messages give (a Ray worker reads by absolute path).
    """
    if fmt is not None and fmt not in INPUT_FORMATS:
        raise DupfindError(f"unknown input format '{fmt}' (choose from {', '.join(INPUT_FORMATS)})")
    if delimiter is not None and len(delimiter) != 1:
        raise DupfindError(f"--delimiter must be one character, not '{delimiter}'")
    raw = _read_bytes(source, path)
    if fmt is None:
        fmt = format_from_path(source) if source != "-" else _sniff_format(raw)
        if fmt is None:
            raise DupfindError(
                f"{source}: cannot tell the format from the extension; use --format-in ({', '.join(INPUT_FORMATS)})"
            )
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DupfindError(f"{source}: corrupt gzip data ({exc})") from exc
    if fmt == "parquet":
        return _read_parquet(source, raw)
    if b"\x00" in raw[:8192] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DupfindError(f"{source}: looks like a binary file, not {fmt} text")
    text = _decode(source, raw, encoding)
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    text = text[len(bom) :]
    if not text.strip():
        raise DupfindError(f"{source}: the input is empty")
    if fmt in ("csv", "tsv"):
        table = _read_delimited(source, text, fmt, delimiter)
    elif fmt == "jsonl":
        table = _read_jsonl(source, text, skip_bad_lines)
    elif fmt == "json":
        table = _read_json(source, text)
    else:
        table = _read_text(text)
    table.gaps[0] = bom + table.gaps[0]
    table.encoding = encoding
    return table


def _is_missing(value: object) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value))


def _read_bytes(source: str, location: str | None = None) -> bytes:
    if source == "-" and location is None:
        return sys.stdin.buffer.read()
    path = Path(location or source)
    if path.is_dir():
        raise DupfindError(f"{source}: is a directory, not a file")
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise DupfindError(f"{source}: no such file") from exc
    except OSError as exc:
        raise DupfindError(f"{source}: cannot read ({exc.strerror or exc})") from exc


def _decode(source: str, raw: bytes, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except LookupError as exc:
        raise DupfindError(f"unknown encoding '{encoding}'") from exc
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DupfindError(
            f"{source}: line {line}: bytes that are not valid {encoding} (byte 0x{raw[exc.start]:02x}); "
            "pass the file's encoding with --encoding"
        ) from exc


def _sniff_delimiter(lines: list[str]) -> str:
    """`,` unless the header line (quoted parts aside) has none and has `;`, `|` or tabs: then the commonest."""
    header = next((line for line in lines if line.strip()), "")
    unquoted = re.sub(r'"[^"]*"', "", header)
    if "," in unquoted:
        return ","
    counts = {candidate: unquoted.count(candidate) for candidate in _CSV_DELIMITERS}
    best = max(counts, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


def _read_delimited(source: str, text: str, fmt: str, delimiter: str | None) -> Table:
    """CSV (quoted fields may span lines) or TSV (no quoting: a row is a line), record by record."""
    lines = io.StringIO(text, newline="").readlines()
    if fmt == "tsv":
        sep = delimiter or "\t"
        reader = csv.reader(lines, delimiter=sep, quoting=csv.QUOTE_NONE, strict=True)
    else:
        sep = delimiter or _sniff_delimiter(lines)
        reader = csv.reader(lines, delimiter=sep, quotechar='"', doublequote=True, strict=True)
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    kind = "TSV" if fmt == "tsv" else "CSV"
    header: list[str] | None = None
    records: list[list[str | None]] = []
    pieces: list[str] = []
    gaps = [""]
    done = 0
    while True:
        try:
            fields = next(reader, None)
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                raise DupfindError(f"{source}: line {done + 1}: a quoted field starts here and never ends") from exc
            raise DupfindError(f"{source}: line {reader.line_num}: not valid {kind} ({exc})") from exc
        if fields is None:
            break
        raw = "".join(lines[done : reader.line_num])
        start, done = done + 1, reader.line_num
        if not fields:
            gaps[-1] += raw
        elif header is None:
            header = fields
            gaps[-1] += raw
        else:
            if len(fields) > len(header):
                raise DupfindError(f"{source}: line {start}: expected {len(header)} fields, saw {len(fields)}")
            records.append([*fields, *[None] * (len(header) - len(fields))])
            pieces.append(raw)
            gaps.append("")
    if header is None:
        raise DupfindError(f"{source}: the input is empty")
    names = _column_names(header)
    if all(not name.strip() for name in header):
        raise DupfindError(f"{source}: the header row has no column names")
    frame = pd.DataFrame(records, columns=pd.Index(names, dtype=object), dtype=object)
    return Table(fmt, frame, list(range(1, len(records) + 1)), pieces=pieces, gaps=gaps, delimiter=sep)


def _column_names(header: list[str]) -> list[str]:
    """Header names made unique as pandas does: empty ones `Unnamed: i`, repeats `name.1`, `name.2`, …"""
    names: list[str] = []
    for i, name in enumerate(header):
        name = name if name.strip() else f"Unnamed: {i}"
        base, count = name, 0
        while name in names:
            count += 1
            name = f"{base}.{count}"
        names.append(name)
    return names


def _read_jsonl(source: str, text: str, skip_bad_lines: bool) -> Table:
    records: list[dict[str, Any]] = []
    numbers: list[int] = []
    pieces: list[str] = []
    gaps = [""]
    bad = 0
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        raw = line + "\n" if number < len(lines) else line
        if not line.strip():
            gaps[-1] += raw
            continue
        try:
            record = json.loads(line)
            if isinstance(record, str):
                record = {"question": record}
            if not isinstance(record, dict):
                raise ValueError(f"expected a JSON object, got {type(record).__name__}")
        except ValueError as exc:
            if skip_bad_lines:
                bad += 1
                gaps[-1] += raw
                continue
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise DupfindError(
                f"{source}: line {number}: invalid JSON ({reason}); --skip-bad-lines skips such lines"
            ) from exc
        records.append(record)
        numbers.append(number)
        pieces.append(raw)
        gaps.append("")
    if not records:
        raise DupfindError(f"{source}: no JSON objects found")
    return Table("jsonl", _frame_from_records(records), numbers, bad_lines=bad, pieces=pieces, gaps=gaps)


def _read_json(source: str, text: str) -> Table:
    """A JSON array of objects, each object's text kept as it was."""
    not_array = f"{source}: expected a JSON array of objects (use .jsonl for one object per line)"
    decoder = json.JSONDecoder()
    position = _skip_space(text, 0)
    if not text.startswith("[", position):
        _json_syntax(source, text)
        raise DupfindError(not_array)
    records: list[dict[str, Any]] = []
    pieces: list[str] = []
    gaps = [text[: position + 1]]
    position += 1
    try:
        if not text.startswith("]", _skip_space(text, position)):
            while True:
                start = _skip_space(text, position)
                gaps[-1] += text[position:start]
                record, position = decoder.raw_decode(text, start)
                if not isinstance(record, dict):
                    raise DupfindError(not_array)
                records.append(record)
                pieces.append(text[start:position])
                gaps.append("")
                end = _skip_space(text, position)
                if text.startswith("]", end):
                    break
                if not text.startswith(",", end):
                    raise json.JSONDecodeError("Expecting ',' delimiter", text, end)
                gaps[-1] += text[position : end + 1]
                position = end + 1
    except json.JSONDecodeError as exc:
        raise DupfindError(f"{source}: line {exc.lineno}: invalid JSON ({exc.msg})") from exc
    end = _skip_space(text, position)
    end = _skip_space(text, end + 1)
    if end != len(text):
        _json_syntax(source, text)
    gaps[-1] += text[position:]
    frame = _frame_from_records(records)
    return Table("json", frame, list(range(1, len(records) + 1)), pieces=pieces, gaps=gaps)


def _skip_space(text: str, position: int) -> int:
    """The position of the first character at or after `position` that is not JSON whitespace."""
    return cast(re.Match[str], _JSON_SPACE.match(text, position)).end()


def _json_syntax(source: str, text: str) -> None:
    """Raise the JSON parser's own complaint about `text`, if it has one."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise DupfindError(f"{source}: line {exc.lineno}: invalid JSON ({exc.msg})") from exc


def _frame_from_records(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Records as columns in first-seen key order, values exact: a column of one JSON type gets its dtype
    (int64, float64, bool), any other is `object` with `None` for nulls; keys a record lacked are noted in
    `frame.attrs` so that the JSON writers leave them out again."""
    keys = list(dict.fromkeys(key for record in records for key in record))
    columns: dict[str, Any] = {}
    absent: dict[str, NDArray[np.int64]] = {}
    for key in keys:
        values = [record.get(key) for record in records]
        lacking = np.array([i for i, record in enumerate(records) if key not in record], dtype=np.int64)
        if len(lacking):
            absent[key] = lacking
        kinds = {type(value) for value in values}
        if kinds == {int} and all(-(2**63) <= value < 2**63 for value in cast(list[int], values)):
            columns[key] = np.array(values, dtype=np.int64)
        elif kinds in ({float}, {bool}):
            columns[key] = np.array(values, dtype=float if kinds == {float} else bool)
        else:
            columns[key] = pd.Series(values, dtype=object)
    frame = pd.DataFrame(columns, columns=pd.Index(keys, dtype=object))
    if absent:
        frame.attrs[_ABSENT] = absent
    return frame


def _read_text(text: str) -> Table:
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
        pieces = [line + "\n" for line in lines]
    else:
        pieces = [line + "\n" for line in lines[:-1]] + [lines[-1]]
    frame = pd.DataFrame({"question": [line.rstrip("\r") for line in lines]}, dtype=object)
    return Table("txt", frame, list(range(1, len(lines) + 1)), pieces=pieces, gaps=[""] * (len(lines) + 1))


def _read_parquet(source: str, raw: bytes) -> Table:
    """The Arrow table as read, and as a frame: every column, a stored pandas index included (in the file's
    column order), integers and booleans nullable so that a null does not turn them into floats, and nested
    values (lists, structs, maps) kept in their Arrow types, which hold exact integers beside nulls."""
    import pyarrow

    nullable = {
        pyarrow.int8(): pd.Int8Dtype(),
        pyarrow.int16(): pd.Int16Dtype(),
        pyarrow.int32(): pd.Int32Dtype(),
        pyarrow.int64(): pd.Int64Dtype(),
        pyarrow.uint8(): pd.UInt8Dtype(),
        pyarrow.uint16(): pd.UInt16Dtype(),
        pyarrow.uint32(): pd.UInt32Dtype(),
        pyarrow.uint64(): pd.UInt64Dtype(),
        pyarrow.bool_(): pd.BooleanDtype(),
    }
    try:
        arrow = read_parquet(raw)
        frame = arrow.to_pandas(
            ignore_metadata=True,
            types_mapper=lambda kind: pd.ArrowDtype(kind) if pyarrow.types.is_nested(kind) else nullable.get(kind),
            use_threads=False,
        )
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        raise DupfindError(f"{source}: not a readable Parquet file ({str(exc).splitlines()[0]})") from exc
    return Table("parquet", frame, list(range(1, len(frame) + 1)), arrow=arrow)


def read_parquet(raw: bytes) -> pyarrow.Table:
    """A Parquet file's table, read in this thread alone (raises Arrow's errors).

    `pq.read_table` reads ahead on Arrow's thread pools: after a damaged page those threads could still be
    decoding when the interpreter exits with the error, and the process aborted ("terminate called without an
    active exception", exit 134) instead of exiting 2. Here no pool thread is started, so none outlives the error.
    """
    import pyarrow.parquet as pq

    return pq.ParquetFile(io.BytesIO(raw), pre_buffer=False).read(use_threads=False)
