"""Reading question tables (CSV, TSV, JSONL, JSON, Parquet, text; files or stdin) and writing results."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from dupfind.errors import DupfindError

INPUT_FORMATS = ("csv", "tsv", "jsonl", "json", "parquet", "txt")
OUTPUT_FORMATS = ("table", "csv", "tsv", "jsonl", "json", "parquet")
TEXT_COLUMN_NAMES = ("question", "text", "title", "body")
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

    def __len__(self) -> int:
        return len(self.texts)


def format_from_path(path: str) -> str | None:
    """The format named by a file's extension (`.gz` looked through), or None."""
    name = path.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return _EXTENSIONS.get(Path(name).suffix)


def read_table(
    source: str, fmt: str | None = None, encoding: str = "utf-8", skip_bad_lines: bool = False
) -> tuple[pd.DataFrame, int]:
    """Read a table from a path or `-` (stdin); returns the frame and the number of bad lines skipped."""
    if fmt is not None and fmt not in INPUT_FORMATS:
        raise DupfindError(f"unknown input format '{fmt}' (choose from {', '.join(INPUT_FORMATS)})")
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
        return _read_parquet(source, raw), 0
    if b"\x00" in raw[:8192] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DupfindError(f"{source}: looks like a binary file, not {fmt} text")
    text = _decode(source, raw, encoding)
    if not text.strip():
        raise DupfindError(f"{source}: the input is empty")
    if fmt in ("csv", "tsv"):
        return _read_delimited(source, text, "," if fmt == "csv" else "\t"), 0
    if fmt == "jsonl":
        return _read_jsonl(source, text, skip_bad_lines)
    if fmt == "json":
        return _read_json(source, text), 0
    lines = [line.rstrip("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return pd.DataFrame({"question": lines}, dtype=object), 0


def load_questions(
    source: str,
    fmt: str | None = None,
    text_col: str | None = None,
    id_col: str | None = None,
    encoding: str = "utf-8",
    skip_bad_lines: bool = False,
) -> Questions:
    """Read a table and pick out its questions; blank questions are skipped and counted."""
    frame, bad_lines = read_table(source, fmt, encoding, skip_bad_lines)
    return questions_from_frame(source, frame, text_col, id_col, bad_lines)


def questions_from_frame(
    source: str, frame: pd.DataFrame, text_col: str | None = None, id_col: str | None = None, bad_lines: int = 0
) -> Questions:
    """The questions of a table already read (`load_questions` after reading; the Ray engine's readers)."""
    if frame.empty or len(frame.columns) == 0:
        raise DupfindError(f"{source}: the input has no rows")
    column = pick_text_column(source, frame, text_col)
    if id_col is not None and id_col not in frame.columns:
        raise DupfindError(f"{source}: no id column '{id_col}' (columns: {_list(frame.columns)})")
    values = frame[column]
    texts_all = ["" if _is_missing(value) else str(value) for value in values]
    keep = np.array([i for i, text in enumerate(texts_all) if text.strip()], dtype=np.int64)
    if len(keep) == 0:
        raise DupfindError(f"{source}: column '{column}' holds no non-blank questions")
    ids_all = frame[id_col].tolist() if id_col is not None else list(range(1, len(frame) + 1))
    ids = [ids_all[i] for i in keep]
    texts = [texts_all[i] for i in keep]
    return Questions(source, frame, column, ids, texts, keep, len(frame) - len(keep), bad_lines)


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
    return value is None or (isinstance(value, float) and np.isnan(value))


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
        text = raw.decode(encoding)
    except LookupError as exc:
        raise DupfindError(f"unknown encoding '{encoding}'") from exc
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DupfindError(
            f"{source}: line {line}: bytes that are not valid {encoding} (byte 0x{raw[exc.start]:02x}); "
            "pass the file's encoding with --encoding"
        ) from exc
    return text.removeprefix("\ufeff")


def _read_delimited(source: str, text: str, sep: str) -> pd.DataFrame:
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, engine="c")
    except pd.errors.ParserError as exc:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if found:
            expected, line, saw = found.groups()
            raise DupfindError(f"{source}: line {line}: expected {expected} fields, saw {saw}") from exc
        raise DupfindError(f"{source}: not valid {'CSV' if sep == ',' else 'TSV'} ({str(exc).strip()})") from exc
    except pd.errors.EmptyDataError as exc:
        raise DupfindError(f"{source}: the input is empty") from exc
    unnamed = [column for column in frame.columns if str(column).startswith("Unnamed: ")]
    if unnamed and len(unnamed) == len(frame.columns):
        raise DupfindError(f"{source}: the header row has no column names")
    return frame


def _read_jsonl(source: str, text: str, skip_bad_lines: bool) -> tuple[pd.DataFrame, int]:
    records: list[dict[str, Any]] = []
    bad = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
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
                continue
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise DupfindError(
                f"{source}: line {number}: invalid JSON ({reason}); --skip-bad-lines skips such lines"
            ) from exc
        records.append(record)
    if not records:
        raise DupfindError(f"{source}: no JSON objects found")
    return pd.DataFrame.from_records(records), bad


def _read_json(source: str, text: str) -> pd.DataFrame:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DupfindError(f"{source}: line {exc.lineno}: invalid JSON ({exc.msg})") from exc
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise DupfindError(f"{source}: expected a JSON array of objects (use .jsonl for one object per line)")
    return pd.DataFrame.from_records(data)


def _read_parquet(source: str, raw: bytes) -> pd.DataFrame:
    import pyarrow

    try:
        return pd.read_parquet(io.BytesIO(raw))
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        raise DupfindError(f"{source}: not a readable Parquet file ({str(exc).splitlines()[0]})") from exc


def output_format(output: str | None, fmt: str | None, stdout_is_terminal: bool) -> str:
    """The output format: `--format`, else `-o`'s extension, else a table to a terminal and JSONL to a pipe."""
    if fmt is not None:
        if fmt not in OUTPUT_FORMATS:
            raise DupfindError(f"unknown output format '{fmt}' (choose from {', '.join(OUTPUT_FORMATS)})")
        if fmt == "table" and output not in (None, "-"):
            raise DupfindError("the table format is for the terminal; pick csv, tsv, jsonl, json or parquet for a file")
        return fmt
    if output is not None and output != "-":
        guessed = format_from_path(output)
        if guessed is None or guessed == "txt":
            raise DupfindError(f"{output}: cannot tell the output format from the extension; use --format")
        return guessed
    return "table" if stdout_is_terminal else "jsonl"


def write_table(frame: pd.DataFrame, output: str | None, fmt: str, title: str | None = None) -> None:
    """Write a frame to stdout or, atomically (temp file + rename), to a file."""
    if output is None or output == "-":
        if fmt == "table":
            _print_table(frame, title)
        elif fmt == "parquet":
            if sys.stdout.isatty():
                raise DupfindError("Parquet is binary: write it to a file with -o, or pipe it")
            frame.to_parquet(sys.stdout.buffer, index=False)
        else:
            _write_text(frame, fmt, sys.stdout)
            sys.stdout.flush()
        return
    if fmt == "table":
        raise DupfindError("the table format is for the terminal; pick csv, tsv, jsonl, json or parquet for a file")
    with atomic_output(output, binary=fmt == "parquet") as handle:
        if fmt == "parquet":
            frame.to_parquet(handle, index=False)
        else:
            _write_text(frame, fmt, handle)


@contextmanager
def atomic_output(path: str, binary: bool = False) -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; rename it over `path` only when the block completes."""
    target = Path(path)
    if target.is_dir():
        raise DupfindError(f"{path}: is a directory")
    if not target.parent.exists():
        raise DupfindError(f"{path}: the folder {target.parent} does not exist")
    compress = target.name.endswith(".gz")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as raw:
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
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise DupfindError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_text(frame: pd.DataFrame, fmt: str, handle: IO[str]) -> None:
    if fmt in ("csv", "tsv"):
        frame.to_csv(handle, sep="," if fmt == "csv" else "\t", index=False, quoting=csv.QUOTE_MINIMAL)
    elif fmt == "json":
        handle.write(json.dumps(_records(frame), ensure_ascii=False, indent=1) + "\n")
    else:
        for start in range(0, len(frame), 1000):
            chunk = _records(frame.iloc[start : start + 1000])
            handle.write("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in chunk))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records", force_ascii=False, double_precision=6))  # type: ignore[no-any-return]


def _print_table(frame: pd.DataFrame, title: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
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

    def load(self, source: str) -> Questions:
        """The questions of a file (or `-`, stdin)."""
        return load_questions(source, self.format_in, self.text_col, self.id_col, self.encoding, self.skip_bad_lines)


def check_destination(path: str | None, inputs: Sequence[str] = ()) -> None:
    """Fail early, before any work, when a result could not be written at `path` (None or `-`: stdout):
    a folder, a folder that does not exist, or one of the `inputs` (it would be replaced before it is read)."""
    if path is None or path == "-":
        return
    target = Path(path)
    if target.is_dir():
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
