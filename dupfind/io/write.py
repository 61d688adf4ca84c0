"""Writing results: a table on the terminal, CSV, TSV, JSONL, JSON, Parquet or HTML files (atomically), or a folder
of Parquet parts; values and types come back as they were read."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.io.atomic import replacing, replacing_folder, writing
from dupfind.io.cells import _NOT_PLAIN, cell_text, records, text_cells
from dupfind.io.destinations import check_parts_folder, is_folder_output
from dupfind.io.questions import Questions
from dupfind.io.read import _is_missing
from dupfind.io.row_text import rows_text

if TYPE_CHECKING:
    import pyarrow

    from dupfind.io.html import HtmlPage

PART_ROWS = 1_000_000  # rows of each part of a folder output (Parquet)


def write_rows(
    questions: Questions,
    positions: Sequence[int] | NDArray[np.int64],
    output: str | None,
    fmt: str,
    added: pd.DataFrame | None = None,
    title: str | None = None,
    page: HtmlPage | None = None,
) -> None:
    """Write the input's rows at `positions` (taken once each, in file order) to `output` (None or `-`: stdout),
    with the `added` columns after the input's (one row for each input row, as `Clusters.columns` makes them).

    In the input's own format they come back exactly as they went in: the same bytes for text formats
    (header, lines that were not rows, such as blank lines, kept in place; added columns are more fields or
    members at the end of each row, `dupfind.io.row_text`), the same Arrow types and metadata for Parquet. In
    another format their values are written like any table (`txt`: the questions; `title` and `page` are for
    a table or an HTML page, as in `write_table`).
    """
    if added is not None and fmt == "txt":
        raise DupfindError("a text file holds the questions alone; write the added columns as csv, jsonl or parquet")
    chosen = np.unique(np.asarray(positions, dtype=np.int64))
    table = questions.table
    if table is not None and fmt == table.fmt:
        if table.arrow is not None:
            taken = _with_arrow_columns(table.arrow.take(chosen), None if added is None else added.iloc[chosen])
            _write_parquet(output, lambda handle: _write_arrow(taken, handle))
        else:
            _write_bytes(rows_text(table, chosen, added).encode(table.encoding), output)
        return
    frame = questions.frame.iloc[chosen]
    if fmt != "txt":
        if added is not None:
            frame = frame.copy()
            for name in added.columns:
                frame[name] = added[name].iloc[chosen].array
        write_table(frame, output, fmt, title, page)
        return
    lines = ["" if _is_missing(value) else str(value) for value in frame[questions.text_col]]
    _refuse_breaks(output, questions.text_col, lines, "a text file", r"[\r\n]")
    _write_bytes("".join(f"{line}\n" for line in lines).encode("utf-8"), output)


def _with_arrow_columns(arrow: pyarrow.Table, added: pd.DataFrame | None) -> pyarrow.Table:
    """The Arrow table with the added columns after its own (typed as `pyarrow.Table.from_pandas` types them)."""
    if added is None:
        return arrow
    extra = _frame_arrow(added)
    for position in range(extra.num_columns):
        arrow = arrow.append_column(extra.schema.field(position), extra.column(position))
    return arrow


def _frame_arrow(frame: pd.DataFrame) -> pyarrow.Table:
    """A frame as an Arrow table, its index left out (and its `attrs`, which say what a JSON input lacked)."""
    import pyarrow

    return pyarrow.Table.from_pandas(frame, preserve_index=False)


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


def write_table(
    frame: pd.DataFrame | Iterable[pd.DataFrame],
    output: str | None,
    fmt: str,
    title: str | None = None,
    page: HtmlPage | None = None,
) -> None:
    """Write a frame to stdout or, atomically (temp file + rename), to a file; an HTML `page` (`dupfind.io.html`)
    is titled `title` and tells what `page` holds beyond the frame.

    The frame may come in chunks (frames with the same columns, one at least: `dupfind.pairs.mining.MinedPairs.
    frames`): CSV, TSV, JSONL and a folder of Parquet parts are written a chunk at a time, the same bytes as the
    whole frame's, so that a large result is never held whole as a frame; other formats join the chunks first."""
    chunks = _chunks(frame)
    if fmt == "parquet" and is_folder_output(output):
        assert output is not None
        write_parquet_parts(chunks, output)
        return
    if fmt not in STREAMED_FORMATS:
        whole = _joined(chunks)
        chunks = _chunks(whole)
    if fmt == "html":
        from dupfind.io.html import render_html

        _write_bytes(render_html(whole, title, page).encode("utf-8"), output)
        return
    if output is None or output == "-":
        if fmt == "table":
            _print_table(whole, title)
        elif fmt == "parquet":
            _write_parquet(output, lambda handle: _write_arrow(_frame_arrow(whole), handle))
        else:
            _write_chunks(chunks, fmt, sys.stdout, output)
            sys.stdout.flush()
        return
    if fmt == "table":
        raise DupfindError(
            "the table format is for the terminal; pick csv, tsv, jsonl, json, parquet or html for a file"
        )
    if fmt == "parquet":
        _write_parquet(output, lambda handle: _write_arrow(_frame_arrow(whole), handle))
        return
    with atomic_output(output) as handle:
        _write_chunks(chunks, fmt, handle, output)


STREAMED_FORMATS = ("csv", "tsv", "jsonl")  # written a chunk of rows at a time by `write_table`


def _chunks(frame: pd.DataFrame | Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """A frame, or its chunks, as chunks (`write_table`)."""
    return iter([frame]) if isinstance(frame, pd.DataFrame) else iter(frame)


def _joined(chunks: Iterator[pd.DataFrame]) -> pd.DataFrame:
    """Chunks of a frame as one (the first as it is when there is one)."""
    first = next(chunks)
    rest = list(chunks)
    return pd.concat([first, *rest], ignore_index=True) if rest else first


def write_parquet_parts(frame: pd.DataFrame | Iterable[pd.DataFrame], folder: str, part_rows: int = PART_ROWS) -> None:
    """Write a frame (or its chunks, as `write_table` takes them) as a folder of Parquet parts (`part-00000.parquet`,
    ...), `part_rows` rows each, in the frame's order, all or nothing (`dupfind.io.atomic.replacing_folder`). One
    part, empty, for an empty frame. Every part has the first chunk's Arrow schema. Read back as one table by
    `pandas.read_parquet(folder)`, Arrow datasets, Ray Data or DuckDB."""
    import pyarrow
    import pyarrow.parquet as pq

    check_parts_folder(folder)
    try:
        with replacing_folder(folder) as staging:
            chunks = _chunks(frame)
            for part, table in enumerate(_parts(chunks, part_rows)):
                with replacing(staging / f"part-{part:05d}.parquet") as handle:
                    pq.write_table(table, handle)
    except pyarrow.ArrowException as exc:
        raise DupfindError(f"{folder}: cannot write Parquet ({str(exc).splitlines()[0]})") from exc
    except OSError as exc:
        raise DupfindError(f"{folder}: cannot write ({exc.strerror or exc})") from exc


def _parts(chunks: Iterator[pd.DataFrame], part_rows: int) -> Iterator[pyarrow.Table]:
    """The chunks' rows as Arrow tables of `part_rows` rows (the last shorter; one empty table for no rows), in the
    first chunk's schema."""
    import pyarrow

    first = _frame_arrow(next(chunks))
    rest = (pyarrow.Table.from_pandas(chunk, schema=first.schema, preserve_index=False) for chunk in chunks)
    held: list[pyarrow.Table] = []
    rows = parts = 0
    for table in itertools.chain([first], rest):
        held.append(table)
        rows += table.num_rows
        while rows >= part_rows:
            joined = pyarrow.concat_tables(held)
            yield joined.slice(0, part_rows)
            held, rows, parts = [joined.slice(part_rows)], rows - part_rows, parts + 1
    if rows or not parts:
        yield pyarrow.concat_tables(held)


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
    """Write `path` all or nothing (`dupfind.io.atomic.replacing`), gzip-compressed when it ends in `.gz`.

    A symlink is written through (its target is replaced); /dev/stdout, a device or a FIFO is written in place
    (`dupfind.io.atomic.writing`). A new file gets the umask's mode (0666 & ~umask), a replaced one keeps its
    mode (and, as root, its owner).
    """
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise DupfindError(f"{path}: is a directory")
    if not target.parent.exists():
        raise DupfindError(f"{path}: the folder {Path(path).parent} does not exist")
    compress = Path(path).name.endswith(".gz")
    try:
        with writing(path) as raw, _stream(raw, compress, binary) as handle:
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


def _write_chunks(chunks: Iterable[pd.DataFrame], fmt: str, handle: IO[str], output: str | None) -> None:
    """The chunks of a frame as CSV, TSV or JSONL, one after the other: the header once, rows numbered on (JSON:
    one chunk, the whole frame, as `write_table` gives it)."""
    written = 0
    for chunk in chunks:
        if fmt == "csv":
            text_cells(chunk).to_csv(handle, index=False, header=written == 0, quoting=csv.QUOTE_MINIMAL)
        elif fmt == "tsv":
            _write_tsv(chunk, handle, output, header=written == 0, first=written + 1)
        elif fmt == "json":
            handle.write(json.dumps(records(chunk), ensure_ascii=False, indent=1) + "\n")
        else:
            for start in range(0, len(chunk), 1000):
                lines = records(chunk.iloc[start : start + 1000])
                handle.write("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in lines))
        written += len(chunk)


def _write_tsv(frame: pd.DataFrame, handle: IO[str], output: str | None, header: bool = True, first: int = 1) -> None:
    """TSV has no quoting, so a value holding a tab or a line break cannot be written: that is an error (naming
    the row, the frame's first being row `first`).

    Cells are formatted as the CSV writer formats them (written as CSV, then read back cell by cell).
    """
    buffer = io.StringIO()
    text_cells(frame).to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL)
    rows = list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))
    for column, name in enumerate(rows[0]):
        if header:
            _refuse_breaks(output, name, [name], "TSV", r"[\t\r\n]", first=0)
        _refuse_breaks(output, name, [row[column] for row in rows[1:]], "TSV", r"[\t\r\n]", first=first)
    handle.write("".join("\t".join(row) + "\n" for row in (rows if header else rows[1:])))


def _refuse_breaks(output: str | None, column: str, values: list[str], kind: str, pattern: str, first: int = 1) -> None:
    """A one-line error for the first value matching `pattern` (a tab or line break that `kind` cannot hold);
    rows are numbered from `first` (0: the header)."""
    for row, value in enumerate(values, start=first):
        if re.search(pattern, value):
            raise DupfindError(
                f"{output or '-'}: column '{column}' row {row} holds a tab or line break, which {kind} "
                "cannot hold; write csv, jsonl, json or parquet instead"
            )


def _shown(value: Any) -> str:
    """A value on the terminal: a float to 4 decimals, a nested value as its JSON text, else its own text."""
    if isinstance(value, float):
        return f"{value:.4f}"
    return cell_text(value) if isinstance(value, _NOT_PLAIN) else str(value)


def _print_table(frame: pd.DataFrame, title: str | None) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    table = RichTable(title=title, show_lines=False)
    for column in frame.columns:
        numeric = pd.api.types.is_float_dtype(frame[column])
        table.add_column(str(column), justify="right" if numeric else "left", overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*[_shown(value) for value in row])
    Console().print(table)
