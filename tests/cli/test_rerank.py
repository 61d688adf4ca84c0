"""`--rerank` on compare, mine, search, clusters, dedupe and eval: the bi-encoder proposes, the re-ranker decides."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from dupfind.cli import app
from dupfind.vectors.model import fingerprint, resolve_model
from tests.cli.runner import runner
from tests.conftest import FAKE_RERANK_SETTINGS, FakeEncoder, FakePairScorer, write_fake_reranker

SWAP_A = "how do i convert an integer to a string in java"
SWAP_B = "how do i convert a string to an integer in java"
QUESTIONS = [SWAP_A, SWAP_B, "How do I convert an integer to a string in Java?", "why is the sky blue today"]


def _questions(tmp_path: Path) -> Path:
    file = tmp_path / "questions.csv"
    pd.DataFrame({"id": [10, 20, 30, 40], "question": QUESTIONS}).to_csv(file, index=False)
    return file


def test_compare_rerank_rejects_a_word_swap_the_bi_encoder_accepts(use_fake_reranker: Path) -> None:
    plain = runner.invoke(app, ["compare", SWAP_A, SWAP_B, "--format", "json", "--no-rerank"])
    assert plain.exit_code == 0 and json.loads(plain.stdout)["duplicate"] is True
    result = runner.invoke(
        app, ["compare", SWAP_A, SWAP_B, "--format", "json", "--rerank", "--reranker", str(use_fake_reranker)]
    )
    data = json.loads(result.stdout)
    assert result.exit_code == 1 and data["duplicate"] is False
    assert data["score"] == json.loads(plain.stdout)["score"] and data["rerank_score"] <= 0.5
    same = runner.invoke(app, ["compare", SWAP_A, SWAP_A.upper(), "--rerank", "--reranker", str(use_fake_reranker)])
    assert same.exit_code == 0 and "1.0000\tduplicate" in same.stdout


def test_compare_and_search_rerank_by_default_with_the_built_in_reranker(
    use_fake_reranker: Path, fake_pair_scorer: FakePairScorer, tmp_path: Path
) -> None:
    compared = runner.invoke(app, ["compare", SWAP_A, SWAP_B, "--format", "json"])
    assert compared.exit_code == 0 and "rerank_score" in json.loads(compared.stdout), compared.stderr
    assert fake_pair_scorer.calls == [[(SWAP_A, SWAP_B)]]
    found = runner.invoke(
        app, ["search", str(_questions(tmp_path)), SWAP_A, "--id-col", "id", "-f", "jsonl", "-k", "2"]
    )
    assert found.exit_code == 0 and "re-rank score ≥ 0.319" in found.stderr, found.stderr
    assert all("rerank_score" in json.loads(line) for line in found.stdout.splitlines())
    fake_pair_scorer.calls.clear()
    for command in (["compare", SWAP_A, SWAP_B, "--no-rerank"], ["mine", str(_questions(tmp_path)), "-f", "jsonl"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0 and "rerank_score" not in result.stdout, result.stderr
        assert "re-rank score" not in result.stderr
    assert fake_pair_scorer.calls == []


def test_a_reranker_alone_turns_re_ranking_on(use_fake_reranker: Path) -> None:
    result = runner.invoke(app, ["compare", SWAP_A, SWAP_B, "--format", "json", "--reranker", str(use_fake_reranker)])
    assert result.exit_code == 1 and json.loads(result.stdout)["rerank_score"] <= 0.5


def _index_of_the_base_model(tmp_path: Path) -> tuple[Path, Path]:
    """An index built with the `base` bi-encoder, and a re-ranker calibrated for it: candidates from cosine 0.2
    (0.2 below the default model's own thresholds otherwise)."""
    index = tmp_path / "corpus.dfi"
    build = runner.invoke(
        app, ["index", "build", str(_questions(tmp_path)), "--id-col", "id", "-m", "base", "-o", str(index)]
    )
    assert build.exit_code == 0, build.stderr
    base = fingerprint(resolve_model("base"))
    settings = {**FAKE_RERANK_SETTINGS, "candidates": {base: {"pair": 0.2, "mining": 0.2}}}
    return index, write_fake_reranker(tmp_path / "reranker-for-base", settings)


def test_search_an_index_proposes_candidates_for_the_index_model(use_fake_reranker: Path, tmp_path: Path) -> None:
    index, reranker = _index_of_the_base_model(tmp_path)
    for model in ([], ["--model", "base"]):
        result = runner.invoke(app, ["search", str(index), SWAP_A, "-f", "jsonl", "--reranker", str(reranker), *model])
        assert result.exit_code == 0, result.stderr
        assert "re-rank score ≥ 0.750 and cosine ≥ 0.200" in result.stderr


def test_mine_against_an_index_proposes_candidates_for_the_index_model(use_fake_reranker: Path, tmp_path: Path) -> None:
    index, reranker = _index_of_the_base_model(tmp_path)
    queries = tmp_path / "new.txt"
    queries.write_text(f"{SWAP_B}\n", encoding="utf-8")
    for model in ([], ["--model", "base"]):
        result = runner.invoke(
            app, ["mine", str(queries), "--against", str(index), "-f", "jsonl", "--reranker", str(reranker), *model]
        )
        assert result.exit_code == 0, result.stderr
        assert "candidates with cosine ≥ 0.200" in result.stderr


def test_rerank_options_are_checked_before_loading(use_fake_reranker: Path, fake_pair_scorer: FakePairScorer) -> None:
    result = runner.invoke(app, ["compare", "a", "b", "--rerank", "--reranker", str(use_fake_reranker), "-t", "-0.5"])
    assert result.exit_code == 2 and "between 0 and 1" in result.stderr
    result = runner.invoke(app, ["mine", "-", "--rerank", "--reranker", "base"], input="a\nb\n")
    assert result.exit_code == 2 and "not a re-ranker" in result.stderr
    assert fake_pair_scorer.calls == []


def test_mine_rerank_keeps_the_cosine_and_adds_the_rerank_score(use_fake_reranker: Path, tmp_path: Path) -> None:
    file = _questions(tmp_path)
    out, reranked = tmp_path / "plain.csv", tmp_path / "reranked.csv"
    assert runner.invoke(app, ["mine", str(file), "--id-col", "id", "-o", str(out), "-t", "0.6"]).exit_code == 0
    result = runner.invoke(
        app,
        ["mine", str(file), "--id-col", "id", "-o", str(reranked), "--rerank", "--reranker", str(use_fake_reranker)],
    )
    assert result.exit_code == 0, result.stderr
    plain, frame = pd.read_csv(out), pd.read_csv(reranked)
    assert {(10, 20), (10, 30), (20, 30)} <= set(zip(plain["id_a"], plain["id_b"], strict=True))
    assert list(frame.columns) == ["score", "rerank_score", "id_a", "question_a", "id_b", "question_b"]
    assert list(zip(frame["id_a"], frame["id_b"], strict=True)) == [(10, 30)]
    assert frame["rerank_score"].tolist() == [1.0] and "re-rank score ≥ 0.750" in result.stderr


def test_clusters_and_dedupe_rerank(use_fake_reranker: Path, tmp_path: Path) -> None:
    file = _questions(tmp_path)
    out = tmp_path / "clusters.csv"
    options = ["--id-col", "id", "--rerank", "--reranker", str(use_fake_reranker)]
    assert runner.invoke(app, ["clusters", str(file), *options, "-o", str(out)]).exit_code == 0
    clusters = pd.read_csv(out).set_index("id")["cluster_id"]
    assert clusters[10] == clusters[30] != clusters[20]
    kept = tmp_path / "kept.csv"
    assert runner.invoke(app, ["dedupe", str(file), *options, "-o", str(kept)]).exit_code == 0
    assert pd.read_csv(kept)["id"].tolist() == [10, 20, 40]


def test_search_rerank(use_fake_reranker: Path, tmp_path: Path) -> None:
    file = _questions(tmp_path)
    result = runner.invoke(
        app, ["search", str(file), SWAP_A, "-f", "jsonl", "-k", "3", "--rerank", "--reranker", str(use_fake_reranker)]
    )
    hits = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 0 and [hit["rerank_score"] for hit in hits][:1] == [1.0]
    assert [hit["duplicate"] for hit in hits] == [True, True, False]  # itself and its copy; not the swap


def test_eval_rerank_reports_both_stages(use_fake_reranker: Path, tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame(
        {
            "question1": [SWAP_A, SWAP_A, "red apple pie"],
            "question2": [SWAP_B, QUESTIONS[2], "why is the sky blue"],
            "is_duplicate": [0, 1, 0],
        }
    ).to_csv(pairs, index=False)
    result = runner.invoke(
        app, ["eval", "pairs", str(pairs), "-f", "json", "--rerank", "--reranker", str(use_fake_reranker)]
    )
    data = json.loads(result.stdout)
    assert result.exit_code == 0 and data["candidate_recall"] == 1.0 and data["at_threshold"]["f1"] == 1.0
    questions = tmp_path / "clustered.csv"
    pd.DataFrame({"question": QUESTIONS, "cluster": [1, 2, 1, 3]}).to_csv(questions, index=False)
    result = runner.invoke(
        app, ["eval", "mining", str(questions), "-f", "json", "--rerank", "--reranker", str(use_fake_reranker)]
    )
    data = json.loads(result.stdout)
    assert result.exit_code == 0 and data["gold"] == 1 and data["at_threshold"]["precision"] == 1.0
    assert data["candidates"] >= 2  # the swap was a candidate, rejected by the re-ranker


def test_rerank_scores_are_cached_and_cleared(
    use_fake_reranker: Path, fake_pair_scorer: FakePairScorer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUPFIND_CACHE_DIR", str(tmp_path / "cache"))
    command = ["mine", str(_questions(tmp_path)), "-f", "jsonl", "--rerank", "--reranker", str(use_fake_reranker)]
    first = runner.invoke(app, command)
    assert first.exit_code == 0 and fake_pair_scorer.calls
    fake_pair_scorer.calls.clear()
    again = runner.invoke(app, command)
    assert again.stdout == first.stdout and fake_pair_scorer.calls == []
    info = json.loads(runner.invoke(app, ["cache", "info", "--format", "json"]).stdout)
    assert sum(model["rows"] for model in info["rerank_scores"]) == 3
    cleared = runner.invoke(app, ["cache", "clear"])
    assert cleared.exit_code == 0 and "Removed 3 re-rank scores" in cleared.stderr
    assert json.loads(runner.invoke(app, ["cache", "info", "--format", "json"]).stdout)["rerank_scores"] == []


def test_a_reranker_with_a_bad_threshold_is_refused_before_encoding(
    use_fake_reranker: Path, fake_encoder: FakeEncoder, tmp_path: Path
) -> None:
    broken = write_fake_reranker(tmp_path / "broken", {**FAKE_RERANK_SETTINGS, "mining": float("nan")})
    result = runner.invoke(app, ["mine", str(_questions(tmp_path)), "--reranker", str(broken)])
    assert result.exit_code == 2 and "re-rank threshold is a probability" in result.stderr
    assert fake_encoder.calls == []
