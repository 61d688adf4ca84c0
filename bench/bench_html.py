"""An HTML page of 100k pairs (`mine -o pairs.html`): the time to write it, and to open it in headless Chromium.

The pairs are synthetic: the questions of examples/questions.csv, each numbered so that every pair differs,
scores falling from 0.99. Writing is timed against CSV of the same frame (a ratio within one run); opening is
`chromium --dump-dom` until the first page (200 pairs) is in the DOM, plain and with a filter given in the address
(every pair searched once): the wall time of the whole run (Chromium's start, and dumping a DOM that holds the
17 MB data block, included), and the page's own time, from the start of navigation to the first page shown
(`performance.now()` put in the title by a copy of the page whose script ends by saying it). Writes
bench/results/html.json.

    .venv/bin/python bench/bench_html.py [--pairs 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dupfind.io.html import PAGE_ROWS, HtmlPage  # noqa: E402
from dupfind.io.write import write_table  # noqa: E402
from tests.browser import CHROMIUM, dump_dom  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "html.json"


def synthetic_pairs(count: int) -> pd.DataFrame:
    """`count` pairs of the example questions, numbered, best first."""
    questions = pd.read_csv(ROOT / "examples" / "questions.csv")["question"].tolist()
    n = len(questions)
    return pd.DataFrame(
        {
            "score": [round(0.99 - 0.24 * i / count, 6) for i in range(count)],
            "id_a": [f"q{i:06d}" for i in range(count)],
            "question_a": [f"{questions[i % n]} (case {i})" for i in range(count)],
            "id_b": [f"q{i + count:06d}" for i in range(count)],
            "question_b": [f"{questions[(i * 7 + 3) % n]} (ticket {i})" for i in range(count)],
        }
    )


def median_seconds(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def with_timing(page: str) -> str:
    """The page, its script ending by writing the milliseconds since navigation began in the title (its
    Content-Security-Policy hash updated to match)."""
    script = re.search(r"<script>(.*?)</script>", page, flags=re.DOTALL)
    assert script is not None
    timed = script.group(1) + "\ndocument.title = String(performance.now());\n"
    old, new = (base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() for text in (script.group(1), timed))
    return page.replace(script.group(1), timed).replace(old, new)


def page_seconds(page: Path, fragment: str = "") -> float:
    """Seconds from the start of navigation to the first page shown, as the timed page tells."""
    title = re.search(r"<title>([\d.]+)</title>", dump_dom(page, fragment))
    assert title is not None, "the timed page did not run"
    return float(title.group(1)) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if CHROMIUM is None:
        sys.exit("bench_html: chromium is not on PATH (apt-get install chromium)")
    frame = synthetic_pairs(args.pairs)
    page = HtmlPage(facts=[("command", "bench_html.py"), ("pairs found", f"{args.pairs:,}")], cosine=0.75)
    with tempfile.TemporaryDirectory() as folder:
        html, csv, timed = Path(folder, "pairs.html"), Path(folder, "pairs.csv"), Path(folder, "timed.html")
        write_html = median_seconds(lambda: write_table(frame, str(html), "html", "Pairs", page), args.runs)
        write_csv = median_seconds(lambda: write_table(frame, str(csv), "csv"), args.runs)
        dom = dump_dom(html)
        shown = len(re.findall(r"<article", dom))
        matches = re.search(r'data-matches="(\d+)"', dom)
        assert shown == PAGE_ROWS and matches and int(matches.group(1)) == args.pairs, (shown, matches)
        timed.write_text(with_timing(html.read_text(encoding="utf-8")), encoding="utf-8")
        opened = median_seconds(lambda: dump_dom(html), args.runs)
        filtered = median_seconds(lambda: dump_dom(html, "filter=ticket%2099"), args.runs)
        ready = statistics.median(page_seconds(timed) for _ in range(args.runs))
        ready_filtered = statistics.median(page_seconds(timed, "filter=ticket%2099") for _ in range(args.runs))
        result = {
            "pairs": args.pairs,
            "html_mb": round(html.stat().st_size / 1e6, 1),
            "csv_mb": round(csv.stat().st_size / 1e6, 1),
            "write_html_s": round(write_html, 3),
            "write_csv_s": round(write_csv, 3),
            "write_html_over_csv": round(write_html / write_csv, 2),
            "dump_dom_s": round(opened, 3),
            "dump_dom_filtered_s": round(filtered, 3),
            "first_page_shown_s": round(ready, 3),
            "first_filtered_page_shown_s": round(ready_filtered, 3),
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))
    print(
        f"{args.pairs:,} pairs: page of {result['html_mb']} MB written in {write_html:.2f} s "
        f"({result['write_html_over_csv']}x CSV's {write_csv:.2f} s); the first {PAGE_ROWS} shown {ready:.2f} s "
        f"after navigation began ({ready_filtered:.2f} s filtered); chromium --dump-dom {opened:.2f} s in all "
        f"({filtered:.2f} s filtered)"
    )


if __name__ == "__main__":
    main()
