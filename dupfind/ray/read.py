"""`--engine ray`'s reading: each file of the input read on the cluster, one task per file, by dupfind's own
reader (`dupfind.io.read.read_rows`), so that a file reads exactly as locally: the same options (--format-in,
--delimiter, --encoding, --skip-bad-lines), the same sniffing, ids and texts, the same one-line errors naming
the file and the line. No Ray Data reader (nor its file-system probing) is involved."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from dupfind.errors import DupfindError
from dupfind.ray.session import RETRIES, worker_errors

if TYPE_CHECKING:
    import pandas as pd

    from dupfind.io.questions import QuestionReader, Questions
    from dupfind.io.read import Table


@dataclass(frozen=True)
class InputFile:
    """One file of an input: its name as messages give it, and its absolute path, where a worker reads it."""

    name: str
    path: str


def input_files(source: str) -> list[InputFile]:
    """The files of an input: itself, the files of a folder (recursively, hidden ones left out) or of a glob."""
    if source == "-":
        raise DupfindError("--engine ray reads files, not stdin")
    path = Path(source)
    if path.is_dir():
        names = sorted(
            str(file)
            for file in path.rglob("*")
            if file.is_file() and not any(part.startswith((".", "_")) for part in file.relative_to(path).parts)
        )
    elif path.exists():
        names = [source]
    else:
        names = sorted(file for file in glob.glob(source, recursive=True) if Path(file).is_file())
    if not names:
        raise DupfindError(f"{source}: no such file, folder or matching files")
    return [InputFile(name, str(Path(name).resolve())) for name in names]


def read_questions_ray(source: str, reader: QuestionReader) -> Questions:
    """The questions of a file, a folder of shards or a glob, each file read by a task on the cluster, in file
    order. A single file gives what `reader.load` gives, less the text around its rows (`Questions.table` is None:
    only writing rows back needs it); the rows of several files are numbered on from one file to the next (each
    file's numbers after the last number of the files before it)."""
    import ray

    from dupfind.io.questions import questions_from_table

    files = input_files(source)
    fmt = reader.format_in or (_format_of(files) if len(files) > 1 else None)
    read = ray.remote(max_retries=RETRIES)(_read_file)
    with worker_errors():
        tables: list[Table] = ray.get([read.remote(file, fmt, reader) for file in files])
    table = tables[0] if len(tables) == 1 else _joined(tables)
    return replace(questions_from_table(source, table, reader.text_col, reader.id_col), table=None)


def _read_file(file: InputFile, fmt: str | None, reader: QuestionReader) -> Table:
    """One file's rows, read as locally, without the text around them."""
    from dupfind.io.read import read_rows

    table = read_rows(file.name, fmt, reader.encoding, reader.skip_bad_lines, reader.delimiter, path=file.path)
    return replace(table, pieces=[], gaps=[], arrow=None)


def _format_of(files: Sequence[InputFile]) -> str:
    """The one format that the files' extensions name."""
    from dupfind.io.formats import format_from_path

    formats = {format_from_path(file.name) for file in files}
    if len(formats) != 1 or None in formats:
        named = ", ".join(sorted(str(fmt) for fmt in formats))
        raise DupfindError(f"cannot tell one input format from the extensions ({named}); use --format-in")
    fmt = formats.pop()
    assert fmt is not None
    return fmt


def _joined(tables: Sequence[Table]) -> Table:
    """The tables of several files as one, rows in file order, row numbers running on."""
    from dupfind.io.read import Table

    numbers: list[int] = []
    for table in tables:
        offset = numbers[-1] if numbers else 0
        numbers += [offset + number for number in table.numbers]
    frame = _joined_frame([table.frame for table in tables])
    return Table(tables[0].fmt, frame, numbers, bad_lines=sum(table.bad_lines for table in tables))


def _joined_frame(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Frames one after the other: as they are when their columns and types agree, else as Python objects (so
    that no integer column turns into floats for a file without it, nor strings meet numbers in a float)."""
    import pandas as pd

    first = frames[0]
    same = all(list(frame.columns) == list(first.columns) and frame.dtypes.equals(first.dtypes) for frame in frames)
    return pd.concat(frames if same else [frame.astype(object) for frame in frames], ignore_index=True)
