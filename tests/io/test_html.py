"""The HTML pages of results (`dupfind.io.html`): the JSON block no text can close, the policy that allows no
request, the format picked by `.html`, atomic writes; and the pages opened in headless Chromium."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import re
import threading
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest

from dupfind.errors import DupfindError
from dupfind.io.formats import format_from_path, output_format
from dupfind.io.html import PAGE_ROWS, HtmlPage, page_kind, render_html, script_json
from dupfind.io.write import write_table
from tests.browser import Dom, dump_dom, needs_chromium

HOSTILE = [
    "<script>document.title='pwned'</script>",
    "<img src=x onerror=\"document.title='pwned'\">",
    "</script><script>document.title='pwned'</script>",
    "\" onmouseover=\"document.title='pwned'",
    "</textarea><b>bold</b>",
    "<!-- <script>document.title='pwned'</script> -->",
    "javascript:document.title='pwned'",
    "line\u2028separator & ampersand \u2029",
]


def pairs_frame(questions: list[tuple[str, str]], rerank: bool = False) -> pd.DataFrame:
    """A frame as `MinedPairs.to_frame` makes it, ids `a1, b1, a2, b2, ...`."""
    frame = pd.DataFrame(
        {
            "score": [round(0.99 - i * 0.001, 6) for i in range(len(questions))],
            "id_a": [f"a{i}" for i in range(1, len(questions) + 1)],
            "question_a": [a for a, _ in questions],
            "id_b": [f"b{i}" for i in range(1, len(questions) + 1)],
            "question_b": [b for _, b in questions],
        }
    )
    if rerank:
        frame.insert(1, "rerank_score", 0.9)
    return frame


def data_block(page: str) -> str:
    """The text of the page's JSON block."""
    found = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, flags=re.DOTALL)
    assert found is not None
    return found.group(1)


def test_script_json_cannot_close_its_block_and_reads_back() -> None:
    value = {"texts": [*HOSTILE, "a < b > c && d"], "n": [1, None, 0.5]}
    text = script_json(value)
    assert not re.search(r"[<>&\u2028\u2029]", text)
    assert json.loads(text) == value


def test_hostile_texts_stay_in_the_data_block() -> None:
    page = render_html(pairs_frame([(text, text.upper()) for text in HOSTILE]))
    assert page.count("</script>") == 2  # the data block's and the script's own
    assert "<!--" not in page
    assert json.loads(data_block(page))["rows"][1][3] == HOSTILE[1]
    for text in HOSTILE:
        assert text not in page or not re.search('[<>&"\u2028]', text)


def test_the_policy_allows_no_request_and_exactly_the_inline_blocks() -> None:
    page = render_html(pairs_frame([("How do I reset my password?", "I forgot my password")]), title="Pairs")
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert policy is not None
    rules = dict(part.strip().split(" ", 1) for part in policy.group(1).replace("&#39;", "'").split(";"))
    assert rules["default-src"] == "'none'" and rules["img-src"] == "'none'"
    for tag, directive in (("style", "style-src"), ("script", "script-src")):
        block = re.search(rf"<{tag}>(.*?)</{tag}>", page, flags=re.DOTALL)
        assert block is not None
        digest = base64.b64encode(hashlib.sha256(block.group(1).encode()).digest()).decode()
        assert rules[directive] == f"'sha256-{digest}'"
    without_data = page.replace(data_block(page), "")
    assert not re.search(r"https?:|//|url\(|@import|<link|<img|<iframe|src=", without_data, flags=re.IGNORECASE)


def test_the_title_and_facts_are_escaped() -> None:
    page = render_html(
        pairs_frame([("a", "b")]), title="<b>x</b>", page=HtmlPage(facts=[("command", "dupfind mine '<i>.csv'")])
    )
    assert "<title>&lt;b&gt;x&lt;/b&gt;</title>" in page
    assert "&lt;i&gt;" in page and "<i>" not in page


def test_the_kind_of_page_follows_the_columns() -> None:
    assert page_kind(pairs_frame([("a", "b")])) == "pairs"
    assert (
        page_kind(pd.DataFrame(columns=["removed_id", "kept_id", "score", "removed_question", "kept_question"]))
        == "map"
    )
    assert page_kind(pd.DataFrame(columns=["rank", "score", "duplicate", "id", "question"])) == "neighbours"
    assert page_kind(pd.DataFrame(columns=["q", "cluster_id", "cluster_size", "representative"])) == "groups"
    assert page_kind(pd.DataFrame(columns=["score", "label", "question_a", "question_b"])) == "labeled"
    with pytest.raises(DupfindError, match="an HTML page shows"):
        page_kind(pd.DataFrame({"x": [1]}))


def test_ids_come_back_exact() -> None:
    frame = pairs_frame([("a", "b"), ("c", "d")])
    frame["id_a"] = pd.Series([7, 10**15 + 1], dtype="int64")
    frame["id_b"] = ["007", None]
    rows = json.loads(data_block(render_html(frame)))["rows"]
    assert [(row[2], row[4]) for row in rows] == [(7, "007"), (10**15 + 1, None)]


def test_groups_list_the_representative_first_and_count_sizes() -> None:
    frame = pd.DataFrame(
        {
            "question": ["reset password", "blank", "password reset", "export csv", "reset my password"],
            "cluster_id": pd.array([1, None, 1, 2, 1], dtype="Int64"),
            "cluster_size": pd.array([3, None, 3, 1, 3], dtype="Int64"),
            "representative": ["t3", None, "t3", "t4", "t3"],
        }
    )
    page = render_html(frame, page=HtmlPage(text_col="question", ids=["t1", None, "t3", "t4", "t5"]))
    groups = json.loads(data_block(page))["groups"]
    assert groups == [[1, [["t3", "password reset"], ["t1", "reset password"], ["t5", "reset my password"]]]]
    assert "1 questions have no duplicate" in page and "<title>1 groups of 3</title>" in page


@pytest.mark.parametrize(("output", "fmt"), [("report.html", None), ("report.HTM", None), ("-", "html")])
def test_html_is_picked_by_extension_or_format(output: str, fmt: str | None) -> None:
    assert output_format(output, fmt, stdout_is_terminal=True) == "html"


def test_an_html_file_is_not_an_input_and_dedupe_rows_are_not_a_page() -> None:
    assert format_from_path("questions.html") is None
    with pytest.raises(DupfindError, match="an HTML page is for --map"):
        output_format("unique.html", None, False, like_input="tickets.csv")


def test_the_page_is_written_atomically(tmp_path: Path) -> None:
    target = tmp_path / "pairs.html"
    target.write_text("old page", encoding="utf-8")
    with pytest.raises(DupfindError):
        write_table(pd.DataFrame({"x": [1]}), str(target), "html")
    assert target.read_text(encoding="utf-8") == "old page"
    write_table(pairs_frame([("a b", "a c")]), str(target), "html", title="Pairs")
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [path.name for path in tmp_path.iterdir()] == ["pairs.html"]


@needs_chromium
def test_a_browser_shows_hostile_texts_as_text_and_runs_none(tmp_path: Path) -> None:
    long_line = "word " * 2_000_000  # 10 MB
    page = tmp_path / "pairs.html"
    write_table(pairs_frame([(text, "plain question") for text in [*HOSTILE, long_line]]), str(page), "html")
    dom = Dom(dump_dom(page))
    assert dom.title == "Duplicate pairs"
    assert dom.matches == len(HOSTILE) + 1 and len(dom.articles) == len(HOSTILE) + 1
    assert "img" not in dom.tags and "b" not in dom.tags and "textarea" not in dom.tags
    for article, text in zip(dom.articles, HOSTILE, strict=False):
        assert text.split("\u2028")[0] in article
    assert "show all 10,000,000 characters" in dom.articles[-1]
    assert len(dom.articles[-1]) < 5000


@needs_chromium
def test_pages_and_filter_render_on_demand(tmp_path: Path) -> None:
    questions = [(f"question {i} about {'billing' if i % 3 == 0 else 'login'}", f"other {i}") for i in range(1000)]
    page = tmp_path / "pairs.html"
    write_table(pairs_frame(questions, rerank=True), str(page), "html")
    dom = Dom(dump_dom(page))
    assert dom.matches == 1000 and len(dom.articles) == PAGE_ROWS
    assert "a1 question 0 about billing" in dom.articles[0] and "re-rank" in dom.articles[0]
    filtered = Dom(dump_dom(page, "filter=BILLING%20question&page=2"))
    assert filtered.matches == 334 and filtered.results["data-page"] == "2"
    assert len(filtered.articles) == 334 - PAGE_ROWS and all("billing" in article for article in filtered.articles)
    assert filtered.articles[0].startswith("#601 ")  # the 201st match keeps its rank among all the pairs
    none = Dom(dump_dom(page, "filter=nowhere"))
    assert none.matches == 0 and not none.articles


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@needs_chromium
def test_the_policy_blocks_requests_even_from_markup_slipped_in(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        page = render_html(pairs_frame([(f'<img src="{url}/text">', f"{url}/plain")]))
        slipped = f'<img src="{url}/markup"><link rel="stylesheet" href="{url}/style"><script src="{url}/js"></script>'
        target = tmp_path / "page.html"
        target.write_text(page.replace("<main", slipped + "<main"), encoding="utf-8")
        dom = Dom(dump_dom(target))
        assert dom.matches == 1
        assert _Counter.hits == []
    finally:
        server.shutdown()
