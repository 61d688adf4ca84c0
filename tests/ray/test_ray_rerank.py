"""`mine --engine ray --rerank` on a local Ray started once for this module (`tests/ray/conftest.py`), with the fake
encoder and pair scorer registered in every worker by `tests.ray_workers`: the pairs of a local `mine --rerank`,
scores kept in the work folder so that a re-run scores only new pairs, and a pair-scorer actor killed mid-run."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from dupfind.cli import app  # noqa: E402
from dupfind.ray.actors import ModelSpec  # noqa: E402
from dupfind.ray.rerank import rerank_store, score_pairs_ray  # noqa: E402
from dupfind.vectors.backends import register_backend, unregister_backend  # noqa: E402
from dupfind.vectors.pair_scorer import pair_keys  # noqa: E402
from tests.conftest import FakeEncoder, FakePairScorer, write_fake_reranker  # noqa: E402
from tests.ray.test_ray_engine import mine as mine_to_parquet  # noqa: E402
from tests.ray.test_ray_engine import synthetic_questions  # noqa: E402
from tests.ray_workers import DiesOnceEncoder, DiesOncePairScorer, die_once_marker  # noqa: E402


@pytest.fixture(scope="module")
def questions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A file of questions (near-duplicates, identical ones, and word-order swaps of others) and a fake
    re-ranker's folder."""
    texts = synthetic_questions(600, seed=1)
    texts += [" ".join(reversed(text.split())) for text in texts[:40]]
    folder = tmp_path_factory.mktemp("rerank")
    path = folder / "questions.csv"
    pd.DataFrame({"id": [f"q{i}" for i in range(len(texts))], "question": texts}).to_csv(path, index=False)
    return path, write_fake_reranker(folder / "fake-reranker")


RERANK_THRESHOLD = "0.45"  # keeps the swaps (0.5), drops the near-duplicates (at most 0.39)


def mine(*args: str) -> tuple[pd.DataFrame, str]:
    return mine_to_parquet(*args, threshold=RERANK_THRESHOLD)


@pytest.fixture(scope="module")
def fake_backends() -> Iterator[None]:
    register_backend("fake", lambda model: FakeEncoder(), pair_scorer=lambda model: FakePairScorer())
    register_backend("fake-dies-once", lambda model: DiesOnceEncoder(), pair_scorer=lambda model: DiesOncePairScorer())
    yield None
    unregister_backend("fake")
    unregister_backend("fake-dies-once")


@pytest.fixture(scope="module")
def ray_run(local_ray: None, fake_backends: None, questions: tuple[Path, Path]) -> tuple[pd.DataFrame, str, Path]:
    """`mine --engine ray --rerank` once: its pairs, its stderr and its work folder."""
    path, reranker = questions
    out = path.with_name("ray.parquet")
    frame, err = mine(str(path), "--engine", "ray", "--backend", "fake", "--reranker", str(reranker), "-o", str(out))
    return frame, err, Path(f"{out}.work")


def test_ray_reranks_like_a_local_mine_rerank(
    ray_run: tuple[pd.DataFrame, str, Path], questions: tuple[Path, Path], tmp_path: Path
) -> None:
    on_ray, err, work = ray_run
    path, reranker = questions
    local, _ = mine(
        str(path), "--backend", "fake", "--index", "ann", "--reranker", str(reranker), "-o", str(tmp_path / "l.parquet")
    )
    assert "rerank_score" in on_ray.columns
    pd.testing.assert_frame_equal(on_ray, local)
    swapped = [a.split()[::-1] == b.split() for a, b in zip(on_ray.question_a, on_ray.question_b, strict=True)]
    swapped_back = [b.split()[::-1] == a.split() for a, b in zip(on_ray.question_a, on_ray.question_b, strict=True)]
    assert np.logical_or(swapped, swapped_back).sum() == 40  # every swap kept
    assert not (on_ray.question_a.str.contains("zz") ^ on_ray.question_b.str.contains("zz")).any()  # no near-dup
    assert (on_ray.rerank_score >= float(RERANK_THRESHOLD)).all()
    assert f"{len(on_ray)} pairs with re-rank score ≥ 0.450 among 320 candidates" in err
    assert "320 of 320 candidate pairs scored now" in err
    assert (work / "rerank").is_dir()


def test_a_rerun_scores_only_new_pairs(
    ray_run: tuple[pd.DataFrame, str, Path], questions: tuple[Path, Path], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    shutil.copytree(ray_run[2], work)
    spec = ModelSpec.of(str(questions[1]), "fake", FakePairScorer.fingerprint)
    pairs = [("how do I sort a list", "how do I sort a list in python"), ("what is love", "love is what")]
    first, second = [a for a, _ in pairs], [b for _, b in pairs]
    scores, scored = score_pairs_ray(first, second, spec, work)
    assert scored == 2
    np.testing.assert_allclose(scores, FakePairScorer().score_batch(first, second))
    again, scored = score_pairs_ray([*first, "a new one"], [*second, "one new a"], spec, work)
    assert scored == 1
    np.testing.assert_array_equal(again[:2], scores)
    cached, found = rerank_store(work).lookup(spec.fingerprint, pair_keys(first, second))
    assert found.all() and cached is not None


def test_a_rerun_of_the_command_says_that_it_scored_no_pair_now(
    ray_run: tuple[pd.DataFrame, str, Path], questions: tuple[Path, Path], tmp_path: Path
) -> None:
    first, _, work = ray_run
    again = tmp_path / "work"
    shutil.copytree(work, again)
    path, reranker = questions
    args = ["--engine", "ray", "--work-dir", str(again), "--backend", "fake", "--reranker", str(reranker)]
    frame, err = mine(str(path), *args, "-o", str(tmp_path / "again.parquet"))
    pd.testing.assert_frame_equal(frame, first)
    assert "0 of 320 candidate pairs scored now" in err


def test_a_pair_scorer_actor_killed_mid_run_loses_and_duplicates_nothing(
    ray_run: tuple[pd.DataFrame, str, Path], questions: tuple[Path, Path], tmp_path: Path
) -> None:
    path, reranker = questions
    marker = die_once_marker().with_name("die-once-rerank")
    marker.touch()
    try:
        killed, _ = mine(
            str(path), "--engine", "ray", "--backend", "fake-dies-once", "--reranker", str(reranker),
            "--work-dir", str(tmp_path / "work"), "-o", str(tmp_path / "killed.parquet"),
        )  # fmt: skip
    finally:
        marker.unlink(missing_ok=True)
    assert marker.with_name("died-rerank").exists()  # a worker did die
    marker.with_name("died-rerank").unlink()
    pd.testing.assert_frame_equal(ray_run[0], killed)


def test_a_pair_scorer_that_cannot_write_its_scores_is_one_line_and_exit_2(
    ray_run: tuple[pd.DataFrame, str, Path], questions: tuple[Path, Path], tmp_path: Path
) -> None:
    path, reranker = questions
    work, out = tmp_path / "work", tmp_path / "pairs.parquet"
    shutil.copytree(ray_run[2] / "embeddings", work / "embeddings")  # encoding is done: the scores are next
    (work / "rerank").mkdir()
    (work / "rerank" / FakePairScorer.fingerprint).touch()  # a file where the actors make their shards' folder
    result = CliRunner().invoke(
        app,
        ["mine", str(path), "--engine", "ray", "--backend", "fake", "--reranker", str(reranker), "-t", RERANK_THRESHOLD,
         "--work-dir", str(work), "-o", str(out), "-q"],
    )  # fmt: skip
    assert (result.exit_code, result.stderr) == (
        2,
        f"dupfind: error: {work}/rerank/{FakePairScorer.fingerprint}: File exists\n",
    )
    assert not out.exists()
