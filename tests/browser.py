"""Opening HTML pages in headless Chromium: the DOM after the page's script ran, or a screenshot."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not on PATH: the pages are checked in a browser (apt-get install chromium)"
)


def chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with its own profile (so that runs side by side do not share one)."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="dupfind-chromium-") as profile:
        command = [
            CHROMIUM,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-extensions",
            f"--user-data-dir={profile}",
            *args,
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)


def dump_dom(page: Path, fragment: str = "") -> str:
    """The page's DOM once loaded and its script has run; `fragment` (after `#`), e.g. `filter=password`."""
    return chromium("--dump-dom", page.resolve().as_uri() + (f"#{fragment}" if fragment else "")).stdout


def screenshot(page: Path, target: Path, width: int = 1100, height: int = 900) -> None:
    """A PNG of the top of the page."""
    chromium(f"--screenshot={target}", f"--window-size={width},{height}", "--hide-scrollbars", page.resolve().as_uri())


class Dom(HTMLParser):
    """What the tests read in a dumped DOM: the title, each `<article>`'s text, the results' data attributes,
    and the tags seen."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.title = ""
        self.articles: list[str] = []
        self.results: dict[str, str | None] = {}
        self.tags: list[str] = []
        self._depth = 0
        self._in_title = False
        self._skip = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "title":
            self._in_title = True
        elif tag == "script":
            self._skip += 1
        elif tag == "main":
            self.results = dict(attrs)
        elif tag == "article":
            self._depth += 1
            self.articles.append("")
        elif tag in ("div", "code", "span") and self._depth and self.articles[-1]:
            self.articles[-1] += " "

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "script":
            self._skip -= 1
        elif tag == "article":
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif self._depth and not self._skip:
            self.articles[-1] += data

    @property
    def matches(self) -> int:
        return int(self.results["data-matches"] or 0)
