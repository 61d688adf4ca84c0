"""Which format a file is in: from its extension, sniffed from its bytes, or chosen for an output."""

from __future__ import annotations

from pathlib import Path

from dupfind.errors import DupfindError
from dupfind.io.destinations import is_folder_output

INPUT_FORMATS = ("csv", "tsv", "jsonl", "json", "parquet", "txt")


OUTPUT_FORMATS = ("table", "csv", "tsv", "jsonl", "json", "parquet", "html")


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
_PAGE_EXTENSIONS = {".html": "html", ".htm": "html"}  # written (`dupfind.io.html`), never read


def format_from_path(path: str, output: bool = False) -> str | None:
    """The format named by a file's extension (`.gz` looked through), or None; an `output` may be an HTML page."""
    name = path.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = Path(name).suffix
    return _EXTENSIONS.get(suffix) or (_PAGE_EXTENSIONS.get(suffix) if output else None)


def _sniff_format(raw: bytes) -> str:
    head = raw.lstrip()[:1]
    if head == b"{":
        return "jsonl"
    if head == b"[":
        return "json"
    return "txt"


def output_format(output: str | None, fmt: str | None, stdout_is_terminal: bool, like_input: str | None = None) -> str:
    """The output format: `--format`, else `-o`'s extension, else a table to a terminal and JSONL to a pipe.

    With `like_input` (the input's format, or its path), for results that are rows of the input as `dedupe`
    writes, the default is the input's own format instead, text included.
    """
    allowed = OUTPUT_FORMATS if like_input is None else (*(name for name in OUTPUT_FORMATS if name != "html"), "txt")
    if like_input is not None and "html" in (fmt, format_from_path(output or "", output=True)):
        raise DupfindError("the kept rows are data, written in a data format; an HTML page is for --map")
    if fmt is not None:
        if fmt not in allowed:
            raise DupfindError(f"unknown output format '{fmt}' (choose from {', '.join(allowed)})")
        if fmt != "parquet" and is_folder_output(output):
            raise DupfindError(f"{output}: a folder is written as Parquet parts; use --format parquet, or name a file")
        if fmt == "table" and output not in (None, "-"):
            raise DupfindError(
                "the table format is for the terminal; pick csv, tsv, jsonl, json, parquet or html for a file"
            )
        return fmt
    if is_folder_output(output):
        return "parquet"
    if output is not None and output != "-":
        guessed = format_from_path(output, output=True)
        if guessed is None or guessed not in allowed:
            raise DupfindError(f"{output}: cannot tell the output format from the extension; use --format")
        return guessed
    if like_input is not None:
        same = like_input if like_input in INPUT_FORMATS else format_from_path(like_input)
        if like_input == "-" or same is None:
            raise DupfindError(f"{like_input}: cannot tell the output format; use --format or --format-in")
        return same
    return "table" if stdout_is_terminal else "jsonl"
