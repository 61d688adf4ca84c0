"""The labels file: a CSV of `question1,question2,is_duplicate,score`, appended to (and synced) at each answer."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from dupfind.errors import DupfindError

LABEL_COLUMNS = ("question1", "question2", "is_duplicate", "score")


@dataclass
class LabelRows:
    """The rows of a labels file."""

    first: list[str] = field(default_factory=list)
    second: list[str] = field(default_factory=list)
    labels: list[bool] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


def read_labels(path: str | Path) -> LabelRows:
    """The rows of a labels file (`question1,question2,is_duplicate,score`); an absent or empty file has none."""
    path = Path(path)
    rows = LabelRows()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return rows
    except OSError as exc:
        raise DupfindError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not raw:
        return rows
    if not raw.endswith(b"\n"):
        raise DupfindError(f"{path}: the last row is incomplete (no line end); remove it and run again")
    try:
        reader = csv.reader(io.StringIO(raw.decode("utf-8"), newline=""))  # rows end at \n (or \r\n), not at U+2028
        header = next(reader)
        if tuple(header) != LABEL_COLUMNS:
            raise DupfindError(
                f"{path}: not a labels file: its columns are {','.join(header)}, not {','.join(LABEL_COLUMNS)}; "
                "give another -o"
            )
        for line, row in enumerate(reader, start=2):
            if len(row) != len(LABEL_COLUMNS) or row[2] not in ("0", "1"):
                raise DupfindError(f"{path}: row {line} is not question1,question2,0|1,score")
            try:
                score = float(row[3])
            except ValueError:
                raise DupfindError(f"{path}: row {line} has score '{row[3]}', not a number") from None
            rows.first.append(row[0])
            rows.second.append(row[1])
            rows.labels.append(row[2] == "1")
            rows.scores.append(score)
    except UnicodeDecodeError as exc:
        raise DupfindError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise DupfindError(f"{path}: not a CSV file ({exc})") from None
    return rows


class LabelsWriter:
    """Appends labels to a file, each row flushed and synced to disk at once; the last rows can be taken back."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.handle = self.path.open("a", encoding="utf-8", newline="")
        except OSError as exc:
            raise DupfindError(f"{path}: cannot write ({exc.strerror or exc})") from exc
        if self.handle.tell() == 0:
            self._write(LABEL_COLUMNS)

    def append(self, first: str, second: str, label: bool, score: float) -> int:
        """Write one row; returns the file's size before it (to `truncate` to)."""
        offset = self.handle.tell()
        self._write((first, second, "1" if label else "0", f"{score:.6f}"))
        return offset

    def truncate(self, offset: int) -> None:
        """Take back the rows written from `offset` on."""
        self.handle.truncate(offset)
        self.handle.seek(offset)
        self._sync()

    def close(self) -> None:
        self.handle.close()

    def _write(self, row: tuple[str, ...]) -> None:
        # csv quotes a field holding \n but not a lone \r, which any CSV reader takes for a line end: quote that row
        quote_all = any("\r" in value for value in row)
        csv.writer(
            self.handle, lineterminator="\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
        ).writerow(row)
        self._sync()

    def _sync(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
