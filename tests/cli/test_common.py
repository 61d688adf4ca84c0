"""What every command shares: checks before the model loads, one-line errors, hidden old spellings, -q."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import pytest

from dupfind.cli import app
from dupfind.vectors.backends import register_backend, unregister_backend
from dupfind.vectors.encoding import Embeddings
from tests.cli.runner import run, runner
from tests.conftest import FakeEncoder


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The fake encoder as the default backend, recording each time a model is loaded."""
    loaded: list[str] = []

    def load(model: object) -> FakeEncoder:
        loaded.append(str(model))
        return FakeEncoder()

    register_backend("recorded", load)
    monkeypatch.setenv("DUPFIND_BACKEND", "recorded")
    yield loaded
    unregister_backend("recorded")


@pytest.fixture
def questions(tmp_path: Path) -> Path:
    path = tmp_path / "q.csv"
    pd.DataFrame({"id": [1, 2, 3], "question": ["How do I bake bread?", "How to bake bread?", "Why?"]}).to_csv(
        path, index=False
    )
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mine", "{q}", "-o", "{tmp}/missing/pairs.csv"], "the folder"),
        (["mine", "{q}", "-f", "table", "-o", "{tmp}/pairs.csv"], "table format is for the terminal"),
        (["mine", "{q}", "--top-k", "0"], "--top-k must be at least 1, got 0"),
        (["mine", "{q}", "--threshold", "nan"], "--threshold must be between -1 and 1, got nan"),
        (["mine", "{q}", "--limit", "-1"], "--limit must be at least 0"),
        (["mine", "{q}", "--index", "hnsw"], "unknown --index 'hnsw'"),
        (["mine", "{q}", "--batch-size", "100000"], "--batch-size must be between 1 and 1024"),
        (["mine", "{q}", "--backend", "nope"], "unknown backend 'nope'"),
        (["mine", "{q}", "--precision", "fp16"], "unknown precision 'fp16'"),
        (["mine", "{q}", "--precision", "int8"], "--precision int8 needs --backend openvino, not recorded"),
        (["dedupe", "{q}", "--backend", "torch", "--precision", "int8"], "needs --backend openvino, not torch"),
        (["search", "{q}", "bread", "--device", "tpu"], "unknown device 'tpu'"),
        (["compare", "a", "b", "--device", "cuda"], "--device cuda needs --backend torch"),
        (["mine", "{q}", "-o", "{q}"], "is also an input"),
        (["dedupe", "{q}", "-o", "{q}"], "is also an input"),
        (["dedupe", "{q}", "--map", "{tmp}/nowhere/map.csv"], "the folder"),
        (["dedupe", "{q}", "-o", "{tmp}/out.csv", "--map", "{tmp}/out.csv"], "--map and --output name the same file"),
        (["dedupe", "{q}", "--keep", "shortest"], "unknown --keep 'shortest'"),
        (["clusters", "{q}", "--method", "louvain"], "unknown --method 'louvain'"),
        (["search", "{q}", "bread", "-k", "0"], "--top-k must be at least 1"),
        (["index", "build", "{q}", "-o", "{q}"], "is also an input"),
        (["compare", "a", "b", "--no-rerank", "-t", "2"], "--threshold must be between -1 and 1"),
        (["compare", "a", "b", "-t", "2"], "--threshold must be between 0 and 1"),
        (["compare", "a", "b", "--no-rerank", "--reranker", "x"], "--no-rerank and --reranker contradict"),
        (["eval", "mining", "{q}", "--top-k", "0"], "--top-k must be at least 1"),
    ],
)
def test_impossible_arguments_fail_before_the_model_loads(
    loads: list[str], questions: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    code, out, err = run(*[arg.format(q=questions, tmp=tmp_path) for arg in args])
    assert code == 2 and out == ""
    assert err.startswith("dupfind: error: ") and message in err and len(err.strip().splitlines()) == 1
    assert loads == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["q.csv"]


class BrokenEncoder(FakeEncoder):
    def encode_batch(self, texts: Sequence[str]) -> Embeddings:
        raise RuntimeError("the runtime fell over\nsecond line")


@pytest.mark.parametrize(
    "args", [["compare", "a b", "a c"], ["search", "{q}", "bread"], ["mine", "{q}"]], ids=["compare", "search", "mine"]
)
def test_an_unexpected_error_exits_2_in_one_line(
    monkeypatch: pytest.MonkeyPatch, questions: Path, args: list[str]
) -> None:
    register_backend("broken", lambda model: BrokenEncoder())
    monkeypatch.setenv("DUPFIND_BACKEND", "broken")
    try:
        code, out, err = run(*[arg.format(q=questions) for arg in args], "--no-cache")
        assert code == 2 and out == ""  # not 1, which compare and search use for "not a duplicate"
        errors = [line for line in err.splitlines() if line.startswith("dupfind: error")]
        assert errors == ["dupfind: error: unexpected error: the runtime fell over (run with -v for the traceback)"]
        assert "Traceback" not in err
        code, _, err = run("-v", *[arg.format(q=questions) for arg in args], "--no-cache")
        assert code == 2 and "Traceback" in err and "RuntimeError" in err
    finally:
        unregister_backend("broken")


def test_old_option_spellings_still_work_hidden(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame({"a": ["x y", "p q", "x y z"], "b": ["x y", "r s", "x y"], "is_duplicate": [1, 0, 1]}).to_csv(
        pairs, index=False
    )
    new = run("eval", "pairs", str(pairs), "--question1-col", "a", "--question2-col", "b", "-f", "json")
    old = run("eval", "pairs", str(pairs), "--q1-col", "a", "--q2-col=b", "-f", "json")
    assert new[0] == old[0] == 0 and new[1] == old[1]
    assert "--q1-col is now --question1-col" in old[2] and "--q2-col is now --question2-col" in old[2]
    help_text = run("eval", "pairs", "--help")[1]
    assert "--question1-col" in help_text and "--q1-col" not in help_text
    assert "--print-only" not in run("calibrate", "--help")[1]


def test_quiet_hides_warnings_too(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("word " * 100 + "\nshort question here\n\nanother question\n", encoding="utf-8")
    code, _, err = run("mine", str(path))
    assert code == 0 and "longer than the model's 32 tokens" in err and "skipped 1 blank" in err
    code, _, err = run("mine", str(path), "-q")
    assert code == 0 and err == ""


def test_library_warnings_are_one_dupfind_line(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    path = tmp_path / "q.txt"
    path.write_text("first question\nsecond question\n", encoding="utf-8")
    result = runner.invoke(app, ["mine", str(path)], env={"DUPFIND_CACHE_DIR": str(blocker)})
    assert result.exit_code == 0
    warning = [line for line in result.stderr.splitlines() if "cache" in line]
    assert len(warning) == 1 and warning[0].startswith("dupfind: warning: embedding cache not written")
    assert "warnings.warn" not in result.stderr and "UserWarning" not in result.stderr


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="torch sees a CUDA device here")
def test_device_cuda_without_cuda_fails_before_the_model_loads(loads: list[str], questions: Path) -> None:
    code, out, err = run("mine", str(questions), "--backend", "torch", "--device", "cuda")
    assert code == 2 and out == ""
    assert err == "dupfind: error: --device cuda, but torch sees no CUDA device (use --device cpu or auto)\n"


def test_a_progress_bar_opened_inside_another_shares_its_display(monkeypatch: pytest.MonkeyPatch) -> None:
    import dupfind.cli.output as common

    monkeypatch.setattr(common, "stderr_is_terminal", lambda: True)
    with common.progress_bar("Encoding", False) as encoding:
        encoding(1, 2)
        with common.progress_bar("Re-ranking", False) as reranking:  # rich allows one live display at a time
            reranking(1, 1)
        encoding(1, 2)
    assert common._displays == []
