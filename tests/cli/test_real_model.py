"""The built-in model end to end, offline, with network connections refused (slow: loads the model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def run_offline(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "TRANSFORMERS_"))}
    env["DUPFIND_CACHE_DIR"] = str(cache)
    return subprocess.run(
        [sys.executable, "-m", "tests.no_network", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_compare_duplicate_and_not(cache: Path) -> None:
    same = run_offline(
        "compare",
        "What is your favorite anime and why?",
        "What's your favorite anime? And why?",
        "--format",
        "json",
        cache=cache,
    )
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["score"] >= 0.95
    other = run_offline(
        "compare",
        "What is your favorite anime and why?",
        "What if the Dirty War in Argentina never happpened?",
        cache=cache,
    )
    assert other.returncode == 1, other.stderr
    assert "not duplicate" in other.stdout
    assert "Traceback" not in same.stderr + other.stderr


def test_mine_example_file_finds_known_duplicates(cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs.csv"
    result = run_offline(
        "mine", str(ROOT / "examples" / "questions.csv"), "--id-col", "id", "-o", str(out), cache=cache
    )
    assert result.returncode == 0, result.stderr
    pairs = pd.read_csv(out)
    gold = pd.read_csv(ROOT / "examples" / "questions.csv").set_index("id")["cluster"]
    same_cluster = (gold[pairs.id_a].to_numpy() == gold[pairs.id_b].to_numpy()).mean()
    assert len(pairs) > 50 and same_cluster > 0.7
