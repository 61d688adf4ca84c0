"""Reading question tables (CSV, TSV, JSONL, JSON, Parquet, text; files or stdin) and writing results."""

from __future__ import annotations

import csv
import datetime
import gzip
import io
import json
import os
import re
import stat
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from dupfind.atomic import replacing, replacing_folder
from dupfind.errors import DupfindError

if TYPE_CHECKING:
    import pyarrow

INPUT_FORMATS = ("csv", "tsv", "jsonl", "json", "parquet", "txt")
OUTPUT_FORMATS = ("table", "csv", "tsv", "jsonl", "json", "parquet")
TEXT_COLUMN_NAMES = ("question", "text", "title", "body")
PART_ROWS = 1_000_000  # rows of each part of a folder output (Parquet)
_PART = re.compile(r"part-\d{5,}\.parquet")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "txt",
}
_CSV_DELIMITERS = (";", "|", "\t")
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_ABSENT = "dupfind.absent"  # frame.attrs key: per column, the index labels of JSON rows that lacked the key
_WHERE = {"jsonl": "line", "txt": "line", "json": "element"}  # what a row number counts; else "row"
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
    text (`pieces`) and the text around the rows (`gaps[i]` precedes row i, `gaps[-1]` follows the last);
    Parquet keeps the Arrow table as read.
    """

    fmt: str
    frame: pd.DataFrame
    numbers: list[int]
    encoding: str = "utf-8"
    bad_lines: int = 0
    pieces: list[str] = field(default_factory=list, repr=False)
    gaps: list[str] = field(default_factory=list, repr=False)
    arrow: pyarrow.Table | None = field(default=None, repr=False)


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


def format_from_path(path: str) -> str | None:
    """The format named by a file's extension (`.gz` looked through), or None."""
    name = path.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return _EXTENSIONS.get(Path(name).suffix)


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
) -> Table:
    """Read a table from a path or `-` (stdin), keeping what writes its rows back unchanged (`write_rows`).

    A CSV's delimiter is `delimiter`, else sniffed from the header line (`,`, else `;`, `|` or tab).
    """
    if fmt is not None and fmt not in INPUT_FORMATS:
        raise DupfindError(f"unknown input format '{fmt}' (choose from {', '.join(INPUT_FORMATS)})")
    if delimiter is not None and len(delimiter) != 1:
        raise DupfindError(f"--delimiter must be one character, not '{delimiter}'")
    raw = _read_bytes(source)
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


def _is_missing(value: object) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value))


def _list(columns: Any) -> str:
    return ", ".join(str(column) for column in columns)


def _read_bytes(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    path = Path(source)
    if path.is_dir():
        raise DupfindError(f"{source}: is a directory, not a file")
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise DupfindError(f"{source}: no such file") from exc
    except OSError as exc:
        raise DupfindError(f"{source}: cannot read ({exc.strerror or exc})") from exc


def _sniff_format(raw: bytes) -> str:
    head = raw.lstrip()[:1]
    if head == b"{":
        return "jsonl"
    if head == b"[":
        return "json"
    return "txt"


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
    return Table(fmt, frame, list(range(1, len(records) + 1)), pieces=pieces, gaps=gaps)


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
    column order), integers and booleans nullable so that a null does not turn them into floats."""
    import pyarrow
    import pyarrow.parquet as pq

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
        arrow = pq.read_table(io.BytesIO(raw))
        frame = arrow.to_pandas(ignore_metadata=True, types_mapper=nullable.get)
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        raise DupfindError(f"{source}: not a readable Parquet file ({str(exc).splitlines()[0]})") from exc
    return Table("parquet", frame, list(range(1, len(frame) + 1)), arrow=arrow)


def output_format(output: str | None, fmt: str | None, stdout_is_terminal: bool, like_input: str | None = None) -> str:
    """The output format: `--format`, else `-o`'s extension, else a table to a terminal and JSONL to a pipe.

    With `like_input` (the input's format, or its path), for results that are rows of the input as `dedupe`
    writes, the default is the input's own format instead, text included.
    """
    allowed = OUTPUT_FORMATS if like_input is None else (*OUTPUT_FORMATS, "txt")
    if fmt is not None:
        if fmt not in allowed:
            raise DupfindError(f"unknown output format '{fmt}' (choose from {', '.join(allowed)})")
        if fmt != "parquet" and is_folder_output(output):
            raise DupfindError(f"{output}: a folder is written as Parquet parts; use --format parquet, or name a file")
        if fmt == "table" and output not in (None, "-"):
            raise DupfindError("the table format is for the terminal; pick csv, tsv, jsonl, json or parquet for a file")
        return fmt
    if is_folder_output(output):
        return "parquet"
    if output is not None and output != "-":
        guessed = format_from_path(output)
        if guessed is None or guessed not in allowed:
            raise DupfindError(f"{output}: cannot tell the output format from the extension; use --format")
        return guessed
    if like_input is not None:
        same = like_input if like_input in INPUT_FORMATS else format_from_path(like_input)
        if like_input == "-" or same is None:
            raise DupfindError(f"{like_input}: cannot tell the output format; use --format or --format-in")
        return same
    return "table" if stdout_is_terminal else "jsonl"


def write_rows(
    questions: Questions, positions: Sequence[int] | NDArray[np.int64], output: str | None, fmt: str
) -> None:
    """Write the input's rows at `positions` (taken once each, in file order) to `output` (None or `-`: stdout).

    In the input's own format they come back exactly as they went in: the same bytes for text formats
    (header, lines that were not rows, such as blank lines, kept in place), the same Arrow types and
    metadata for Parquet. In another format their values are written like any table (`txt`: the questions).
    """
    chosen = np.unique(np.asarray(positions, dtype=np.int64))
    table = questions.table
    if table is not None and fmt == table.fmt:
        if table.arrow is not None:
            taken = table.arrow.take(chosen)
            _write_parquet(output, lambda handle: _write_arrow(taken, handle))
        else:
            _write_bytes(_rows_text(table, chosen).encode(table.encoding), output)
        return
    frame = questions.frame.iloc[chosen]
    if fmt != "txt":
        write_table(frame, output, fmt)
        return
    lines = ["" if _is_missing(value) else str(value) for value in frame[questions.text_col]]
    _refuse_breaks(output, questions.text_col, lines, "a text file", r"[\r\n]")
    _write_bytes("".join(f"{line}\n" for line in lines).encode("utf-8"), output)


def _rows_text(table: Table, chosen: NDArray[np.int64]) -> str:
    if table.fmt == "json":
        separator = table.gaps[1] if len(table.pieces) > 1 else ","
        return table.gaps[0] + separator.join(table.pieces[i] for i in chosen) + table.gaps[-1]
    keep = np.zeros(len(table.pieces), dtype=bool)
    keep[chosen] = True
    parts = [table.gaps[0]]
    for piece, gap, kept in zip(table.pieces, table.gaps[1:], keep.tolist(), strict=True):
        parts.extend((piece, gap) if kept else (gap,))
    return "".join(parts)


def _write_bytes(data: bytes, output: str | None) -> None:
    if output is None or output == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    with atomic_output(output, binary=True) as handle:
        handle.write(data)


def _write_arrow(arrow: pyarrow.Table, handle: IO[bytes]) -> None:
    import pyarrow.parquet as pq

    pq.write_table(arrow, handle)


def write_table(frame: pd.DataFrame, output: str | None, fmt: str, title: str | None = None) -> None:
    """Write a frame to stdout or, atomically (temp file + rename), to a file."""
    if output is None or output == "-":
        if fmt == "table":
            _print_table(frame, title)
        elif fmt == "parquet":
            _write_parquet(output, lambda handle: frame.to_parquet(handle, index=False))
        else:
            _write_text(frame, fmt, sys.stdout, output)
            sys.stdout.flush()
        return
    if fmt == "table":
        raise DupfindError("the table format is for the terminal; pick csv, tsv, jsonl, json or parquet for a file")
    if fmt == "parquet" and is_folder_output(output):
        write_parquet_parts(frame, output)
        return
    if fmt == "parquet":
        _write_parquet(output, lambda handle: frame.to_parquet(handle, index=False))
        return
    with atomic_output(output) as handle:
        _write_text(frame, fmt, handle, output)


def write_parquet_parts(frame: pd.DataFrame, folder: str, part_rows: int = PART_ROWS) -> None:
    """Write a frame as a folder of Parquet parts (`part-00000.parquet`, ...), `part_rows` rows each, in the
    frame's order, all or nothing (`dupfind.atomic.replacing_folder`). One part, empty, for an empty frame.
    Read back as one table by `pandas.read_parquet(folder)`, Arrow datasets, Ray Data or DuckDB."""
    import pyarrow
    import pyarrow.parquet as pq

    table = pyarrow.Table.from_pandas(frame, preserve_index=False)
    try:
        with replacing_folder(folder) as staging:
            for part, start in enumerate(range(0, max(1, len(frame)), part_rows)):
                with replacing(staging / f"part-{part:05d}.parquet") as handle:
                    pq.write_table(table.slice(start, part_rows), handle)
    except pyarrow.ArrowException as exc:
        raise DupfindError(f"{folder}: cannot write Parquet ({str(exc).splitlines()[0]})") from exc
    except OSError as exc:
        raise DupfindError(f"{folder}: cannot write ({exc.strerror or exc})") from exc


def is_folder_output(path: str | None) -> bool:
    """Whether `-o` names a folder (one that exists, or a path ending in `/`): results go there as Parquet parts."""
    return path is not None and path != "-" and (path.endswith(("/", os.sep)) or Path(path).is_dir())


def _write_parquet(output: str | None, write: Any) -> None:
    """Run `write(handle)` on stdout (not a terminal) or an atomic file; Arrow's complaints become one line."""
    import pyarrow

    try:
        if output is None or output == "-":
            if sys.stdout.isatty():
                raise DupfindError("Parquet is binary: write it to a file with -o, or pipe it")
            sys.stdout.flush()
            write(sys.stdout.buffer)
            return
        with atomic_output(output, binary=True) as handle:
            write(handle)
    except pyarrow.ArrowException as exc:
        raise DupfindError(f"{output or '-'}: cannot write Parquet ({str(exc).splitlines()[0]})") from exc


@contextmanager
def atomic_output(path: str, binary: bool = False) -> Iterator[IO[Any]]:
    """Write `path` all or nothing (`dupfind.atomic.replacing`), gzip-compressed when it ends in `.gz`.

    A symlink is written through (its target is replaced); a device or FIFO is written directly. A new
    file gets the umask's mode (0666 & ~umask), a replaced one keeps its mode (and, as root, its owner).
    """
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise DupfindError(f"{path}: is a directory")
    if not target.parent.exists():
        raise DupfindError(f"{path}: the folder {Path(path).parent} does not exist")
    compress = Path(path).name.endswith(".gz")
    try:
        regular = not target.exists() or stat.S_ISREG(target.stat().st_mode)
        with replacing(target) if regular else open(target, "wb") as raw, _stream(raw, compress, binary) as handle:
            yield handle
    except OSError as exc:
        raise DupfindError(f"{path}: cannot write ({exc.strerror or exc})") from exc


@contextmanager
def _stream(raw: IO[bytes], compress: bool, binary: bool) -> Iterator[IO[Any]]:
    """`raw`, gzip-compressed if asked, as bytes or as UTF-8 text; everything is flushed into `raw` at the end."""
    stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="wb", mtime=0)) if compress else raw
    if binary:
        yield stream
    else:
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        yield text
        text.flush()
        text.detach()
    if compress:
        stream.close()


def _write_text(frame: pd.DataFrame, fmt: str, handle: IO[str], output: str | None) -> None:
    if fmt == "csv":
        frame.to_csv(handle, index=False, quoting=csv.QUOTE_MINIMAL)
    elif fmt == "tsv":
        _write_tsv(frame, handle, output)
    elif fmt == "json":
        handle.write(json.dumps(_records(frame), ensure_ascii=False, indent=1) + "\n")
    else:
        for start in range(0, len(frame), 1000):
            chunk = _records(frame.iloc[start : start + 1000])
            handle.write("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in chunk))


def _write_tsv(frame: pd.DataFrame, handle: IO[str], output: str | None) -> None:
    """TSV has no quoting, so a value holding a tab or a line break cannot be written: that is an error.

    Cells are formatted as the CSV writer formats them (written as CSV, then read back cell by cell).
    """
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL)
    rows = list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))
    for column, name in enumerate(rows[0]):
        _refuse_breaks(output, name, [name, *(row[column] for row in rows[1:])], "TSV", r"[\t\r\n]", first=0)
    handle.write("".join("\t".join(row) + "\n" for row in rows))


def _refuse_breaks(output: str | None, column: str, values: list[str], kind: str, pattern: str, first: int = 1) -> None:
    """A one-line error for the first value matching `pattern` (a tab or line break that `kind` cannot hold);
    rows are numbered from `first` (0: the header)."""
    for row, value in enumerate(values, start=first):
        if re.search(pattern, value):
            raise DupfindError(
                f"{output or '-'}: column '{column}' row {row} holds a tab or line break, which {kind} "
                "cannot hold; write csv, jsonl, json or parquet instead"
            )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as JSON-ready dicts with exact values: full float precision, integers as integers, timestamps in
    ISO format to the last digit, nulls as None; keys a JSON input row lacked are left out."""
    absent: dict[str, NDArray[np.int64]] = frame.attrs.get(_ABSENT, {})
    columns = [str(column) for column in frame.columns]
    values = [_json_values(frame.iloc[:, i]) for i in range(len(columns))]
    records = [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]
    for column, labels in absent.items():
        if column in frame.columns:
            for position in np.flatnonzero(frame.index.isin(labels)).tolist():
                del records[position][column]
    return records


def _json_values(series: pd.Series) -> list[Any]:
    if series.dtype in (np.float32, np.float16):
        return [None if np.isnan(value) else float(str(value)) for value in series.to_numpy()]
    return [_json_value(value) for value in series.tolist()]


def _json_value(value: Any) -> Any:
    if _is_missing(value):
        return None
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.generic):
        return _json_value(value.item())
    if isinstance(value, (datetime.date, datetime.time, pd.Timedelta)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_value(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="backslashreplace")
    return str(value)


def _print_table(frame: pd.DataFrame, title: str | None) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    table = RichTable(title=title, show_lines=False)
    for column in frame.columns:
        numeric = pd.api.types.is_float_dtype(frame[column])
        table.add_column(str(column), justify="right" if numeric else "left", overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*[f"{value:.4f}" if isinstance(value, float) else str(value) for value in row])
    Console().print(table)


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


def check_destination(path: str | None, inputs: Sequence[str] = (), parts: bool = False) -> None:
    """Fail early, before any work, when a result could not be written at `path` (None or `-`: stdout):
    a folder, a folder that does not exist, or one of the `inputs` (it would be replaced before it is read).
    With `parts`, a folder is a destination for Parquet parts, if it is new, empty or holds parts alone."""
    if path is None or path == "-":
        return
    target = Path(path)
    if is_folder_output(path) and parts:
        if not target.parent.exists():
            raise DupfindError(f"{path}: the folder {target.parent} does not exist")
        if target.exists() and not target.is_dir():
            raise DupfindError(f"{path}: is a file, not a folder")
        others = [] if not target.exists() else [item for item in target.iterdir() if not _PART.fullmatch(item.name)]
        if others:
            raise DupfindError(f"{path}: holds {others[0].name}, not only Parquet parts; name a new or empty folder")
        for source in inputs:
            if source != "-" and Path(source).resolve().is_relative_to(target.resolve()):
                raise DupfindError(f"{path}: holds the input {source}; write the result to another folder")
        return
    if target.is_dir() or path.endswith(("/", os.sep)):
        raise DupfindError(f"{path}: is a directory")
    if not target.parent.exists():
        raise DupfindError(f"{path}: the folder {target.parent} does not exist")
    for source in inputs:
        if source != "-" and _same_file(source, path):
            raise DupfindError(f"{path}: is also an input; write the result to another file")


def _same_file(first: str, second: str) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return Path(first).resolve() == Path(second).resolve()


def id_column(ids: Sequence[Any]) -> pd.Series:
    """Ids as a column: int64 when all are integers, else objects as they are (never floats made of integers)."""
    column = pd.Series(list(ids))
    if column.dtype.kind == "f" and not all(isinstance(value, float) for value in ids):
        return pd.Series(list(ids), dtype=object)
    return column
