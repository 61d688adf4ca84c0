"""The cost and the gain of `--rerank`, in one run, on Quora dev (reported once; nothing here is tuned on it).

Cost: `dupfind mine dev-questions.csv` with and without `--rerank`, each a fresh process with `--no-cache` (so both
encode every question; the re-ranker scores every candidate), alternating, median of `--runs`; and
`dupfind compare --rerank A B` cold (a fresh process, the exports already in the cache), median of `--runs`.
Gain: `dupfind eval pairs dev-pairs.csv` and `dupfind eval mining dev-questions.csv` with the base model, the
default model, and the default model with `--rerank`; and the verdict on the integer/string word swap. Writes
bench/results/rerank.json, and dupfind/models/catalog.json: the figures `dupfind models` shows.

    .venv/bin/python bench/bench_rerank.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

QUORA = Path(__file__).resolve().parents[2] / "shared" / "data" / "quora"
RESULTS = Path(__file__).resolve().parent / "results" / "rerank.json"
CATALOG = Path(__file__).resolve().parents[1] / "dupfind" / "models" / "catalog.json"
DUPFIND = [sys.executable, "-m", "dupfind"]
SWAP = ("How do I convert an integer to a string in Java?", "How do I convert a string to an integer in Java?")


def wall(args: list[str], ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    """Seconds from start to exit of a fresh `dupfind` process, and its stdout."""
    started = time.perf_counter()
    done = subprocess.run([*DUPFIND, *args], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in ok:
        raise SystemExit(f"dupfind {' '.join(args[:3])} failed:\n{done.stderr}")
    return seconds, done.stdout


def mining_f1(pairs_file: Path, questions: pd.DataFrame) -> dict[str, float]:
    """Precision, recall and F1 of mined pairs against every pair inside a gold cluster."""
    mined = pd.read_parquet(pairs_file)
    cluster = dict(zip(questions["id"], questions["cluster"], strict=True))
    sizes = questions.groupby("cluster").size()
    gold = int((sizes * (sizes - 1) // 2).sum())
    correct = int(sum(cluster[a] == cluster[b] for a, b in zip(mined["id_a"], mined["id_b"], strict=True)))
    precision, recall = correct / max(len(mined), 1), correct / gold
    f1 = 2 * precision * recall / (precision + recall) if correct else 0.0
    return {"pairs": len(mined), "precision": precision, "recall": recall, "f1": f1}


def catalog(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The Quora dev figures `dupfind models` shows for the built-in models: F1 at the calibrated thresholds, best F1
    and AP (the re-ranker's: with the default bi-encoder)."""

    def figures(pairs: dict[str, Any], mining: dict[str, Any]) -> dict[str, float]:
        return {
            "pair F1": round(pairs["at_threshold"]["f1"], 4),
            "pair best F1": round(pairs["best_f1"]["f1"], 4),
            "pair AP": round(pairs["average_precision"], 4),
            "mining F1": round(mining["at_threshold"]["f1"], 4),
            "mining best F1": round(mining["best_f1"]["f1"], 4),
            "mining AP": round(mining["average_precision"], 4),
        }

    return {
        "base": figures(result["eval pairs --model base"], result["eval mining --model base"]),
        "quora": figures(result["eval pairs"], result["eval mining"]),
        "quora-reranker": figures(result["eval pairs --rerank"], result["eval mining --rerank"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reranker", default=None, help="a re-ranker's folder [default: the built-in one]")
    parser.add_argument("--models-only", action="store_true", help="only the models' dev figures (the catalog)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    questions_file, pairs_file = QUORA / "dev-questions.csv", QUORA / "dev-pairs.csv"
    questions = pd.read_csv(questions_file)
    rerank = ["--rerank"] + ([] if args.reranker is None else ["--reranker", args.reranker])
    result: dict[str, Any] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    if args.models_only:
        for task, file in (("pairs", pairs_file), ("mining", questions_file)):
            for name, options in (("--model base", ["--model", "base"]), ("", []), ("--rerank", rerank)):
                report = json.loads(wall(["eval", task, str(file), "-f", "json", "-q", *options])[1])
                result[f"eval {task} {name}".strip()] = report
        CATALOG.write_text(json.dumps(catalog(result), indent=1) + "\n", encoding="utf-8")
        print(json.dumps(catalog(result), indent=1))
        return
    with tempfile.TemporaryDirectory() as work:
        plain_out, rerank_out = Path(work) / "plain.parquet", Path(work) / "rerank.parquet"
        base = ["mine", str(questions_file), "--id-col", "id", "--no-cache", "-q"]
        commands = {"mine": [*base, "-o", str(plain_out)], "mine --rerank": [*base, "-o", str(rerank_out), *rerank]}
        wall(["compare", *SWAP, *rerank], ok=(0, 1))  # exports both models on first use
        seconds: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                seconds[name].append(wall(command)[0])
        result["mine_seconds"] = {name: statistics.median(runs) for name, runs in seconds.items()}
        result["mine_rerank_ratio"] = result["mine_seconds"]["mine --rerank"] / result["mine_seconds"]["mine"]
        result["mining"] = {"mine": mining_f1(plain_out, questions), "mine --rerank": mining_f1(rerank_out, questions)}
    compare = [wall(["compare", *SWAP, *rerank, "--json"], ok=(0, 1)) for _ in range(args.runs)]
    result["compare_rerank_cold_seconds"] = statistics.median(seconds for seconds, _ in compare)
    result["swap"] = json.loads(compare[0][1])
    plain_compare = [wall(["compare", *SWAP, "--no-rerank", "--json"], ok=(0, 1))[0] for _ in range(args.runs)]
    result["compare_cold_seconds"] = statistics.median(plain_compare)
    for task, file in (("pairs", pairs_file), ("mining", questions_file)):
        for name, options in (("--model base", ["--model", "base"]), ("", []), ("--rerank", rerank)):
            report = json.loads(wall(["eval", task, str(file), "-f", "json", "-q", *options])[1])
            result[f"eval {task} {name}".strip()] = report
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    CATALOG.write_text(json.dumps(catalog(result), indent=1) + "\n", encoding="utf-8")
    summary = {
        "mine s": result["mine_seconds"],
        "ratio": round(result["mine_rerank_ratio"], 3),
        "compare --rerank cold s": round(result["compare_rerank_cold_seconds"], 3),
        "compare cold s": round(result["compare_cold_seconds"], 3),
        "swap": result["swap"],
        "mining": result["mining"],
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
