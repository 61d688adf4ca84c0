"""`-o report.html` on `mine`, `clusters`, `dedupe --map`, `search` and `eval pairs`, with the fake encoder: the
pages hold what the other formats hold, opened in headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from tests.browser import Dom, dump_dom, needs_chromium
from tests.cli.runner import run
from tests.conftest import EXAMPLES, FakeEncoder

QUESTIONS = EXAMPLES / "questions.csv"
TICKETS = EXAMPLES / "support_tickets.csv"
LABELED = EXAMPLES / "labeled_pairs.csv"

pytestmark = pytest.mark.usefixtures("use_fake_encoder")


def written(*args: str) -> None:
    code, _, err = run(*args)
    assert code in (0, 1), err


def ids_in(article: str) -> list[str]:
    return re.findall(r"\b[qt]\d{3}\b", article)


@needs_chromium
def test_mine_page_holds_the_pairs_best_first(tmp_path: Path) -> None:
    page, table = tmp_path / "pairs.html", tmp_path / "pairs.csv"
    for output in (page, table):
        written("mine", str(QUESTIONS), "--id-col", "id", "-t", "0.5", "-o", str(output))
    pairs = pd.read_csv(table, dtype={"id_a": str, "id_b": str})
    dom = Dom(dump_dom(page))
    assert dom.title.startswith("Duplicate pairs (cosine ≥ 0.500")
    assert dom.matches == len(pairs) > 200 and len(dom.articles) == 200
    for article, row in zip(dom.articles, pairs.itertuples(), strict=False):
        assert ids_in(article) == [row.id_a, row.id_b]
        assert row.question_a in article and row.question_b in article and f"{row.score:.3f}" in article
    html = page.read_text(encoding="utf-8")
    command = f"dupfind mine {QUESTIONS} --id-col id -t 0.5 -o {page}"
    for fact in (command, "<dd>fp32</dd>", "<dd>cosine ≥ 0.500</dd>", f"<dd>{len(pairs):,}</dd>"):
        assert fact in html


@needs_chromium
def test_the_filter_of_the_clusters_page(tmp_path: Path) -> None:
    page, table = tmp_path / "groups.html", tmp_path / "groups.csv"
    for output in (page, table):
        written("clusters", str(TICKETS), "--id-col", "id", "-t", "0.7", "-o", str(output))
    rows = pd.read_csv(table, dtype=str)
    expected = [set(group["id"]) for _, group in rows.groupby("cluster_id") if len(group) > 1]
    dom = Dom(dump_dom(page))
    assert expected and sorted(map(sorted, expected)) == sorted(sorted(ids_in(article)) for article in dom.articles)
    representatives = set(rows["representative"])
    assert all(ids_in(article)[0] in representatives for article in dom.articles)
    assert "<svg" in page.read_text(encoding="utf-8") and "Groups of duplicates by size" in dump_dom(page)
    texts = [" ".join([*ids, *rows[rows["id"].isin(ids)]["question"]]).lower() for ids in expected]
    for words, fragment in (("how do", "filter=How%20do"), ("dark", "filter=DARK"), ("t025", "filter=t025")):
        filtered = Dom(dump_dom(page, fragment))
        assert filtered.matches == sum(all(word in text for word in words.split()) for text in texts) > 0
        assert all(all(word in article.lower() for word in words.split()) for article in filtered.articles)
    assert Dom(dump_dom(page, "filter=dark%20cancel")).matches == 0


@needs_chromium
def test_dedupe_map_page_says_which_row_each_removed_one_was_kept_as(tmp_path: Path) -> None:
    page, table = tmp_path / "review.html", tmp_path / "map.csv"
    for output in (page, table):
        written("dedupe", str(TICKETS), "--id-col", "id", "-o", str(tmp_path / "unique.csv"), "--map", str(output))
    removed = pd.read_csv(table, dtype={"removed_id": str, "kept_id": str})
    dom = Dom(dump_dom(page))
    assert dom.title == "Duplicates removed" and len(dom.articles) == len(removed) > 0
    for article, row in zip(dom.articles, removed.itertuples(), strict=True):
        assert ids_in(article) == [row.removed_id, row.kept_id]
        assert "removed" in article and "kept as" in article


@needs_chromium
def test_search_page(tmp_path: Path) -> None:
    page = tmp_path / "hits.html"
    written("search", str(TICKETS), "how do I cancel my subscription?", "--id-col", "id", "-t", "0.9", "-o", str(page))
    dom = Dom(dump_dom(page))
    assert dom.title == "Nearest to: how do I cancel my subscription?" and len(dom.articles) == 5
    assert {ids_in(article)[0] for article in dom.articles[:3]} == {"t012", "t014", "t034"}
    assert all("rank" in article for article in dom.articles) and "duplicate" in dom.articles[0]


@needs_chromium
def test_eval_pairs_page_shows_the_histogram_with_the_threshold(tmp_path: Path) -> None:
    page = tmp_path / "eval.html"
    code, out, err = run("eval", "pairs", str(LABELED), "-t", "0.5", "-o", str(page))
    assert code == 0 and out == "", err
    html = page.read_text(encoding="utf-8")
    assert html.count('<rect class="duplicate"') == html.count('<rect class="other"') == 40
    assert "threshold 0.500" in html and "duplicates (31)" in html and "ROC-AUC" in html
    dom = Dom(dump_dom(page))
    assert len(dom.articles) == 62
    assert any("duplicate, missed" in article or "flagged" in article for article in dom.articles)


@needs_chromium
def test_a_reranked_page_shows_both_scores(use_fake_reranker: Path, tmp_path: Path) -> None:
    page = tmp_path / "pairs.html"
    written("mine", str(TICKETS), "--id-col", "id", "--reranker", str(use_fake_reranker), "-o", str(page))
    dom = Dom(dump_dom(page))
    assert dom.articles and all("cosine" in article and "re-rank" in article for article in dom.articles)
    assert re.search(r"<dd>re-rank score ≥ [\d.]+ among \d+ candidates with cosine ≥ [\d.]+</dd>", dump_dom(page))


@pytest.mark.parametrize("command", [("mine", str(TICKETS), "--id-col", "id"), ("eval", "pairs", str(LABELED))])
def test_format_html_on_stdout(command: tuple[str, ...]) -> None:
    code, out, err = run(*command, "--format", "html")
    assert code == 0, err
    assert out.startswith("<!DOCTYPE html>") and out.endswith("</html>\n") and out.count("<!DOCTYPE") == 1


@needs_chromium
def test_a_question_that_holds_markup_runs_nothing(tmp_path: Path) -> None:
    source, page = tmp_path / "hostile.csv", tmp_path / "pairs.html"
    attack = "<img src=x onerror=\"document.title='pwned'\"> <script>document.title='pwned'</script> reset password"
    pd.DataFrame({"id": ["h1", "h2"], "question": [attack, attack + " now"]}).to_csv(source, index=False)
    written("mine", str(source), "--id-col", "id", "-t", "0.5", "-o", str(page))
    text = dump_dom(page)
    dom = Dom(text)
    assert dom.title == "Duplicate pairs (cosine ≥ 0.500)" and "img" not in dom.tags
    assert "&lt;img src=x onerror=" in text and attack in dom.articles[0]


def test_bad_html_outputs_fail_before_the_model_loads(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    code, _, err = run("dedupe", str(TICKETS), "-o", str(tmp_path / "unique.html"))
    assert code == 2 and "an HTML page is for --map" in err
    code, _, err = run("eval", "pairs", str(LABELED), "--rerank", "-o", str(tmp_path / "eval.html"))
    assert code == 2 and "does not go with --rerank" in err
    code, _, err = run("mine", str(TICKETS), "-o", str(tmp_path / "missing" / "pairs.html"))
    assert code == 2 and "does not exist" in err
    assert use_fake_encoder.calls == []
