"""`dupfind cache info|clear`, and `dupfind mine` reading and filling the cache (fake encoder)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli.runner import run
from tests.conftest import FakeEncoder

QUESTIONS = [f"How do I cook recipe number {i} at home?" for i in range(200)]


@pytest.fixture
def cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("DUPFIND_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def write_questions(path: Path, texts: list[str]) -> str:
    pd.DataFrame({"question": texts}).to_csv(path, index=False)
    return str(path)


def encoded(encoder: FakeEncoder) -> int:
    return sum(len(batch) for batch in encoder.calls)


def test_rerun_encodes_nothing_and_new_rows_only(
    use_fake_encoder: FakeEncoder, cache_dir: Path, tmp_path: Path
) -> None:
    file = write_questions(tmp_path / "q.csv", QUESTIONS)
    code, first, err = run("mine", file, "-t", "0.9")
    assert code == 0, err
    assert encoded(use_fake_encoder) == len(QUESTIONS)
    use_fake_encoder.calls.clear()
    code, again, err = run("mine", file, "-t", "0.9")
    assert code == 0, err
    assert encoded(use_fake_encoder) == 0 and again == first
    grown = write_questions(tmp_path / "grown.csv", [*QUESTIONS, "Why is the sky blue?", "What is a monad?"])
    assert run("mine", grown, "-t", "0.9")[0] == 0
    assert encoded(use_fake_encoder) == 2


def test_no_cache_neither_reads_nor_writes(use_fake_encoder: FakeEncoder, cache_dir: Path, tmp_path: Path) -> None:
    file = write_questions(tmp_path / "q.csv", QUESTIONS)
    assert run("mine", file, "--no-cache")[0] == 0
    assert not cache_dir.exists()
    assert run("mine", file)[0] == 0
    use_fake_encoder.calls.clear()
    assert run("mine", file, "--no-cache")[0] == 0
    assert encoded(use_fake_encoder) == len(QUESTIONS)


def test_index_option(use_fake_encoder: FakeEncoder, cache_dir: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    texts = [" ".join(rng.choice(words, 8)) for _ in range(150)]
    file = write_questions(tmp_path / "q.csv", texts + [" ".join(text.split()[1:]) for text in texts[:50]])
    pairs = {}
    for index in ("exact", "ann", "auto"):
        code, out, err = run("mine", file, "-t", "0.8", "--index", index)
        assert code == 0, err
        pairs[index] = {(row["id_a"], row["id_b"]) for row in map(json.loads, out.splitlines())}
    assert len(pairs["exact"]) >= 50 and pairs["exact"] == pairs["ann"] == pairs["auto"]
    code, out, err = run("mine", file, "--index", "fast")
    assert code == 2 and out == "" and "unknown --index 'fast' (choose from exact, ann, auto)" in err


def test_info_and_clear(use_fake_encoder: FakeEncoder, cache_dir: Path, tmp_path: Path) -> None:
    code, out, _ = run("cache", "info")
    assert code == 0 and f"location: {cache_dir / 'embeddings'}" in out and "empty" in out
    assert run("mine", write_questions(tmp_path / "q.csv", QUESTIONS))[0] == 0
    code, out, _ = run("cache", "info", "--format", "json")
    data = json.loads(out)
    assert data["location"] == str(cache_dir / "embeddings")
    assert [(model["fingerprint"], model["rows"]) for model in data["models"]] == [("fake-bag-of-words", 200)]
    code, out, _ = run("cache", "info")
    assert "fake-bag-of-words" in out and "200" in out
    code, _, err = run("cache", "clear", "--model", "fake-bag-of-words")
    assert code == 0 and "Removed 200 embeddings of 1 models" in err
    assert json.loads(run("cache", "info", "--format", "json")[1])["models"] == []


def test_clear_everything(use_fake_encoder: FakeEncoder, cache_dir: Path, tmp_path: Path) -> None:
    assert run("mine", write_questions(tmp_path / "q.csv", QUESTIONS))[0] == 0
    code, _, err = run("cache", "clear")
    assert code == 0 and "Removed 200 embeddings" in err
    assert run("cache", "clear")[0] == 0


@pytest.mark.parametrize(
    "command",
    [
        ["index", "build", "{file}", "-o", "{tmp}/corpus.dfi"],
        ["search", "{file}", "How do I cook recipe number 7 at home?"],
        ["mine", "{file}", "--against", "{file}"],
        ["clusters", "{file}"],
        ["dedupe", "{file}", "-o", "{tmp}/unique.csv"],
        ["eval", "mining", "{gold}"],
        ["eval", "retrieval", "{gold}"],
        ["eval", "pairs", "{pairs}"],
        ["calibrate", "--pairs", "{pairs}", "--questions", "{gold}", "--dry-run"],
    ],
    ids=lambda command: " ".join(word for word in command if "{" not in word),
)
def test_every_command_reads_and_fills_the_cache(
    command: list[str], use_fake_encoder: FakeEncoder, cache_dir: Path, tmp_path: Path
) -> None:
    file = write_questions(tmp_path / "q.csv", QUESTIONS)
    gold = tmp_path / "gold.csv"
    pd.DataFrame({"question": QUESTIONS[:40], "cluster": [i // 2 for i in range(40)]}).to_csv(gold, index=False)
    pairs = tmp_path / "pairs.csv"
    labels = {"question1": QUESTIONS[:20], "question2": QUESTIONS[20:40], "is_duplicate": [i % 2 for i in range(20)]}
    pd.DataFrame(labels).to_csv(pairs, index=False)
    args = [arg.format(file=file, tmp=tmp_path, gold=gold, pairs=pairs) for arg in command]
    assert run(*args, "--no-cache")[0] == 0
    assert not (cache_dir / "embeddings").exists()  # the model's fingerprint may be remembered
    first = run(*args)
    assert first[0] == 0, first[2]
    use_fake_encoder.calls.clear()
    again = run(*args)
    assert again[:2] == first[:2]
    assert encoded(use_fake_encoder) == 0


def shard_files(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "embeddings").glob("*/*.npy"))


def test_a_damaged_cache_gives_the_right_pairs_and_a_warning(
    use_fake_encoder: FakeEncoder, cache_dir: Path, tmp_path: Path
) -> None:
    file = write_questions(tmp_path / "q.csv", [*QUESTIONS, *QUESTIONS[:20]])
    code, first, err = run("mine", file, "-t", "0.9")
    assert code == 0, err
    for npy in shard_files(cache_dir):
        if npy.name.endswith(".vectors.npy"):
            np.save(npy, np.load(npy) * 1000)
    code, again, err = run("mine", file, "-t", "0.9")
    assert code == 0, err
    assert again == first
    warnings = [line for line in err.splitlines() if "damaged shard" in line]
    assert len(warnings) == 1 and warnings[0].startswith("dupfind: warning: ")


@pytest.mark.parametrize("emptied", ["keys", "vectors"])
def test_info_and_clear_work_with_an_empty_shard(
    use_fake_encoder: FakeEncoder, cache_dir: Path, tmp_path: Path, emptied: str
) -> None:
    assert run("mine", write_questions(tmp_path / "q.csv", QUESTIONS))[0] == 0
    [npy] = [npy for npy in shard_files(cache_dir) if npy.name.endswith(f".{emptied}.npy")]
    npy.write_bytes(b"")
    code, out, err = run("cache", "info")
    assert code == 0 and "fake-bag-of-words" in out, err
    code, _, err = run("cache", "clear")
    assert code == 0 and "Removed" in err and "Aborted" not in err
    assert json.loads(run("cache", "info", "--format", "json")[1])["models"] == []
