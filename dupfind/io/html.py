"""HTML pages of results, to look at before deleting anything: one self-contained file (inline CSS and JS, no
fonts, images or scripts from anywhere, a Content-Security-Policy that allows no request), so it opens offline
and can be mailed.

The results travel as JSON in a `<script type="application/json">` block that no text can close, and the page's
script shows them a page at a time (texts set as text, never as markup), so 100k pairs open in seconds. Jinja2
renders the rest with autoescaping on. The kind of page follows from the frame's columns: pairs (`mine`), groups
(`clusters`), a dedupe map (`dedupe --map`), neighbours (`search`) or labeled pairs (`eval pairs`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import numpy as np

from dupfind.errors import DupfindError
from dupfind.io.read import _is_missing

if TYPE_CHECKING:
    import jinja2
    import pandas as pd

PAGE_ROWS = 200  # pairs or groups shown at a time
_HIST_BINS = 40
_JSON_ESCAPES = (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


@dataclass(frozen=True)
class HtmlPage:
    """What a page tells beyond its frame: `facts` for the top (command, model, precision, rule, counts), the
    thresholds marked on the score bars, and for groups the question column `text_col` and each row's id
    (`ids`, aligned with the frame's rows; row numbers from 1 without); `query`, the question a search was for."""

    facts: Sequence[tuple[str, str]] = ()
    cosine: float | None = None
    rerank: float | None = None
    text_col: str | None = None
    ids: Sequence[object] | None = None
    query: str | None = None


def script_json(value: Any) -> str:
    """`value` as JSON that can sit inside a `<script>` block: `<`, `>` and `&` (so `</script>` and `<!--`) and
    the JavaScript line separators are written as `\\u` escapes, which JSON.parse reads back as they were."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for character, escape in _JSON_ESCAPES:
        text = text.replace(character, escape)
    return text


def page_kind(frame: pd.DataFrame) -> str:
    """Which page shows this frame: pairs, groups, map, neighbours or labeled (a `DupfindError` for another)."""
    columns = set(frame.columns)
    for kind, needed in (
        ("pairs", {"score", "id_a", "question_a", "id_b", "question_b"}),
        ("labeled", {"score", "label", "question_a", "question_b"}),
        ("map", {"removed_id", "kept_id", "score", "removed_question", "kept_question"}),
        ("neighbours", {"rank", "score", "duplicate", "id", "question"}),
        ("groups", {"cluster_id", "cluster_size", "representative"}),
    ):
        if needed <= columns:
            return kind
    raise DupfindError("an HTML page shows pairs, groups, a dedupe map or search results; pick another format")


def render_html(frame: pd.DataFrame, title: str | None = None, page: HtmlPage | None = None) -> str:
    """The page of a result frame (from `MinedPairs.to_frame`, `Clusters.to_frame`, `Deduplicated.map_frame`,
    `Neighbours.to_frame`, or labeled pairs with their scores), titled `title`."""
    from markupsafe import Markup

    page = page or HtmlPage()
    kind = page_kind(frame)
    charts: list[dict[str, Any]] = []
    payload, counts = _VIEWS[kind](frame, page, charts)
    payload |= {"page_size": PAGE_ROWS, "cosine": page.cosine, "rerank": page.rerank}
    style, script = _asset("page.css"), _asset("page.js")
    csp = (
        f"default-src 'none'; style-src {_digest(style)}; script-src {_digest(script)}; "
        "img-src 'none'; base-uri 'none'; form-action 'none'"
    )
    return _template().render(
        title=title or _TITLES[kind],
        facts=[*page.facts, *counts],
        charts=charts,
        csp=csp,
        style=Markup(style),
        script=Markup(script),
        data=Markup(script_json(payload)),
    )


_TITLES = {
    "pairs": "Duplicate pairs",
    "labeled": "Labeled pairs",
    "map": "Duplicates removed",
    "neighbours": "Nearest questions",
    "groups": "Groups of duplicates",
}


@cache
def _template() -> jinja2.Template:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("dupfind.io", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return environment.get_template("page.html.j2")


@cache
def _asset(name: str) -> str:
    return files("dupfind.io").joinpath("templates", name).read_text(encoding="utf-8")


def _digest(text: str) -> str:
    """A CSP source that allows exactly this inline block."""
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode('utf-8')).digest()).decode('ascii')}'"


def _value(value: Any) -> Any:
    """An id as JSON: strings and integers as they are, a missing one as null."""
    if _is_missing(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def _text(value: Any) -> str:
    return "" if _is_missing(value) else str(value)


def _column(frame: pd.DataFrame, name: str, convert: Any = _value) -> list[Any]:
    return [convert(value) for value in frame[name].tolist()]


def _scores(frame: pd.DataFrame, name: str) -> list[float | None]:
    if name not in frame.columns:
        return [None] * len(frame)
    return [None if math.isnan(value) else float(value) for value in frame[name].astype(float).tolist()]


def _rows(
    cosine: Sequence[float | None],
    rerank: Sequence[float | None],
    sides: tuple[Sequence[Any], Sequence[str], Sequence[Any], Sequence[str]],
    tags: Sequence[tuple[str, str]] | None = None,
) -> list[list[Any]]:
    """Pairs as the page's rows: `[cosine, rerank, id A, question A, id B, question B, tag, tag class]`."""
    tags = tags or [("", "")] * len(cosine)
    return [
        [score, again, id_a, text_a, id_b, text_b, tag, cls]
        for score, again, id_a, text_a, id_b, text_b, (tag, cls) in zip(cosine, rerank, *sides, tags, strict=True)
    ]


def _pairs(frame: pd.DataFrame, page: HtmlPage, charts: list[dict[str, Any]]) -> tuple[dict[str, Any], list[Any]]:
    sides = (
        _column(frame, "id_a"),
        _column(frame, "question_a", _text),
        _column(frame, "id_b"),
        _column(frame, "question_b", _text),
    )
    rows = _rows(_scores(frame, "score"), _scores(frame, "rerank_score"), sides)
    return {"view": "pairs", "noun": "pairs", "labels": ["question", "duplicate"], "rows": rows}, [
        ("pairs shown", f"{len(rows):,}")
    ]


def _map(frame: pd.DataFrame, page: HtmlPage, charts: list[dict[str, Any]]) -> tuple[dict[str, Any], list[Any]]:
    kept = _column(frame, "kept_id")
    sides = (
        _column(frame, "removed_id"),
        _column(frame, "removed_question", _text),
        kept,
        _column(frame, "kept_question", _text),
    )
    rows = _rows(_scores(frame, "score"), [None] * len(frame), sides)
    counts = [("rows removed", f"{len(rows):,}"), ("kept rows they stand for", f"{len(set(kept)):,}")]
    return {"view": "pairs", "noun": "removed rows", "labels": ["removed", "kept as"], "rows": rows}, counts


def _neighbours(frame: pd.DataFrame, page: HtmlPage, charts: list[dict[str, Any]]) -> tuple[dict[str, Any], list[Any]]:
    if "query" in frame.columns:
        queries, asked = _column(frame, "query_id"), _column(frame, "query", _text)
    else:
        queries, asked = [None] * len(frame), [page.query or ""] * len(frame)
    duplicate = frame["duplicate"].astype(bool).tolist()
    tags = [
        (f"rank {rank}" + (" · duplicate" if hit else ""), "good" if hit else "")
        for rank, hit in zip(frame["rank"].tolist(), duplicate, strict=True)
    ]
    sides = (queries, asked, _column(frame, "id"), _column(frame, "question", _text))
    rows = _rows(_scores(frame, "score"), _scores(frame, "rerank_score"), sides, tags)
    counts = [("results", f"{len(rows):,}"), ("duplicates", f"{sum(duplicate):,}")]
    return {"view": "pairs", "noun": "results", "labels": ["query", "found"], "rows": rows}, counts


def _labeled(frame: pd.DataFrame, page: HtmlPage, charts: list[dict[str, Any]]) -> tuple[dict[str, Any], list[Any]]:
    """Labeled pairs best first, each tagged found, missed, flagged (a false duplicate) or rightly apart."""
    order = np.argsort(-frame["score"].to_numpy(dtype=np.float64), kind="stable")
    ordered = frame.iloc[order]
    scores = ordered["score"].to_numpy(dtype=np.float64)
    labels = ordered["label"].to_numpy(dtype=bool)
    threshold = page.cosine
    above = scores >= threshold if threshold is not None else np.zeros(len(scores), dtype=bool)
    names = {
        (True, True): ("duplicate, found", "good"),
        (True, False): ("duplicate, missed", "bad"),
        (False, True): ("not a duplicate, flagged", "bad"),
        (False, False): ("not a duplicate", ""),
    }
    tags = [names[(label, hit)] for label, hit in zip(labels.tolist(), above.tolist(), strict=True)]
    numbers = [int(position) + 1 for position in order.tolist()]
    sides = (
        numbers,
        _column(ordered, "question_a", _text),
        [None] * len(numbers),
        _column(ordered, "question_b", _text),
    )
    rows = _rows(scores.tolist(), [None] * len(scores), sides, tags)
    charts.append(_score_histogram(scores, labels, threshold))
    return {"view": "pairs", "noun": "pairs", "labels": ["question 1", "question 2"], "rows": rows}, []


def _groups(frame: pd.DataFrame, page: HtmlPage, charts: list[dict[str, Any]]) -> tuple[dict[str, Any], list[Any]]:
    """Groups of duplicates, largest first, each with its representative first; and a histogram of their sizes."""
    text_col = page.text_col or ("question" if "question" in frame.columns else None)
    if text_col is None or text_col not in frame.columns:
        raise DupfindError("an HTML page of groups needs the question column (HtmlPage.text_col)")
    ids = [_value(value) for value in page.ids] if page.ids is not None else list(range(1, len(frame) + 1))
    texts = _column(frame, text_col, _text)
    representatives = _column(frame, "representative")
    members: dict[int, list[int]] = {}
    for row, label in enumerate(frame["cluster_id"].tolist()):
        if not _is_missing(label):
            members.setdefault(int(label), []).append(row)
    groups = []
    for label, rows in sorted(members.items(), key=lambda item: (-len(item[1]), item[0])):
        if len(rows) > 1:
            first = next((row for row in rows if ids[row] == representatives[row]), rows[0])
            ordered = [first, *(row for row in rows if row != first)]
            groups.append([label, [[ids[row], texts[row]] for row in ordered]])
    sizes = [len(rows) for rows in members.values()]
    charts.append(_size_histogram(sizes))
    counts = [
        ("questions", f"{sum(sizes):,}"),
        ("groups", f"{len(sizes):,}"),
        ("groups of duplicates", f"{len(groups):,}"),
        ("questions in them", f"{sum(size for size in sizes if size > 1):,}"),
        ("largest", f"{max(sizes, default=0):,}"),
    ]
    return {"view": "groups", "noun": "groups", "groups": groups}, counts


# What each kind of page shows: its data, the counts under the facts, and its charts (appended).
_VIEWS = {"pairs": _pairs, "labeled": _labeled, "map": _map, "neighbours": _neighbours, "groups": _groups}

_WIDTH, _HEIGHT, _BASE = 640, 170, 18  # a chart's size, and the room under its bars for the ticks


def _score_histogram(
    scores: np.ndarray[Any, Any], labels: np.ndarray[Any, Any], threshold: float | None
) -> dict[str, Any]:
    """The scores of duplicates and non-duplicates in bins, overlaid, with a line at the threshold."""
    points = [*scores.tolist(), *([] if threshold is None else [threshold])] or [0.0]
    low, high = min(points), max(points)
    edges = np.linspace(low, high if high > low else low + 1.0, _HIST_BINS + 1)
    counts = {"other": np.histogram(scores[~labels], edges)[0], "duplicate": np.histogram(scores[labels], edges)[0]}
    tallest = max(1, *(int(count.max()) for count in counts.values()))
    step = _WIDTH / _HIST_BINS
    bars = []
    for kind, count in counts.items():
        for i, n in enumerate(count.tolist()):
            height = (_HEIGHT - _BASE - 4) * n / tallest
            label = (
                f"{n} {'duplicates' if kind == 'duplicate' else 'non-duplicates'}, {edges[i]:.3f}–{edges[i + 1]:.3f}"
            )
            bars.append(_bar(kind, i * step + 1, height, step - 2, label))

    def x(value: float) -> float:
        return float((value - edges[0]) / (edges[-1] - edges[0]) * _WIDTH)

    ticks = [
        {"x": round(min(max(x(edge), 14), _WIDTH - 14), 1), "label": f"{edge:.2f}"}
        for edge in edges[:: _HIST_BINS // 8]
    ]
    marker = None if threshold is None else {"x": round(x(threshold), 1), "label": f"threshold {threshold:.3f}"}
    legend = [
        ("duplicate", f"duplicates ({int(labels.sum()):,})"),
        ("other", f"non-duplicates ({int((~labels).sum()):,})"),
    ]
    return _chart("Cosine scores of duplicates and non-duplicates", bars, ticks, marker, legend)


def _size_histogram(sizes: Sequence[int]) -> dict[str, Any]:
    """How many groups of duplicates there are of each size (questions alone are counted in the caption)."""
    tally: dict[int, int] = {}
    for size in sizes:
        if size > 1:
            tally[size] = tally.get(size, 0) + 1
    alone = sum(1 for size in sizes if size == 1)
    step = _WIDTH / max(len(tally), 8)
    tallest = max(tally.values(), default=1)
    bars, ticks = [], []
    for i, (size, count) in enumerate(sorted(tally.items())):
        height = (_HEIGHT - _BASE - 4) * count / tallest
        bars.append(_bar("size", i * step + 2, height, step - 4, f"{count} groups of {size}"))
        ticks.append({"x": round(i * step + step / 2, 1), "label": str(size)})
    caption = f"Groups of duplicates by size ({alone:,} questions have no duplicate)"
    return _chart(caption, bars, ticks, None, [])


def _bar(kind: str, x: float, height: float, width: float, label: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "x": round(x, 1),
        "y": round(_HEIGHT - _BASE - height, 1),
        "width": round(max(width, 1), 1),
        "height": round(height, 1),
        "label": label,
    }


def _chart(
    caption: str,
    bars: list[dict[str, Any]],
    ticks: list[dict[str, Any]],
    marker: dict[str, Any] | None,
    legend: list[Any],
) -> dict[str, Any]:
    return {
        "caption": caption,
        "width": _WIDTH,
        "height": _HEIGHT,
        "bars": bars,
        "ticks": ticks,
        "marker": marker,
        "legend": legend,
    }
