"""End to end `dupfind mine FILE -o pairs.parquet` at 100k (and 1M) questions: wall time and peak RSS.

Three runs: the first (empty embedding cache, the model already exported), a re-run on the unchanged
file, and a run on the file with 1% of its rows changed (only those are encoded).

Questions: the distinct questions of ../shared/data/quora/{train,dev}-questions.csv (95,909), then, to
reach N, deterministic word-level perturbations of them (seed 0): row `k ≥ R` is question `k mod R` with
1–3 edits among swapping two neighbouring words, dropping a word, inserting or substituting a word drawn
from the questions' own words. Each run is a fresh `dupfind` process with `DUPFIND_CACHE_DIR` in a
temporary folder. Writes bench/results/e2e.json.

    .venv/bin/python bench/bench_e2e.py                       # 100k: about 2.5 min per 100k encoded
    .venv/bin/python bench/bench_e2e.py --sizes 1000000       # 1M: the encoding alone is ~25 min
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "quora"
RESULTS = Path(__file__).resolve().parent / "results" / "e2e.json"
DUPFIND = [sys.executable, "-m", "dupfind"]
# Runs dupfind and, at exit, prints its peak RSS (VmHWM: `ru_maxrss` of a child includes its parent's).
MEASURED = (
    "import atexit, re, sys\n"
    "atexit.register(lambda: print('peak kB', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1],"
    " file=sys.stderr))\n"
    "from dupfind.cli import main\n"
    "sys.argv[0] = 'dupfind'\n"
    "main()\n"
)


def real_questions() -> list[str]:
    """The distinct questions of the train and dev files, in order."""
    texts: dict[str, str] = {}
    for name in ("train", "dev"):
        for text in pd.read_csv(DATA / f"{name}-questions.csv").question.dropna().astype(str):
            texts.setdefault(" ".join(text.casefold().split()), text)
    return list(texts.values())


def perturb(words: list[str], vocabulary: list[str], rng: np.random.Generator) -> str:
    """1–3 random word-level edits of a question."""
    words = list(words)
    for _ in range(rng.integers(1, 4)):
        edit, at = rng.integers(4), int(rng.integers(len(words)))
        if edit == 0 and len(words) > 1:
            at = min(at, len(words) - 2)
            words[at], words[at + 1] = words[at + 1], words[at]
        elif edit == 1 and len(words) > 3:
            del words[at]
        elif edit == 2:
            words.insert(at, vocabulary[int(rng.integers(len(vocabulary)))])
        else:
            words[at] = vocabulary[int(rng.integers(len(vocabulary)))]
    return " ".join(words)


def questions(n: int, real: list[str], seed: int = 0) -> list[str]:
    """`n` questions: the real ones, then perturbed copies of them."""
    split = [text.split() or [text] for text in real]
    vocabulary = [word for words in split for word in words]
    rng = np.random.default_rng(seed)
    return real[:n] + [perturb(split[k % len(real)], vocabulary, rng) for k in range(len(real), n)]


def run(args: list[str], cache: Path, log: Path) -> dict[str, Any]:
    """Run `dupfind -v ...` in a fresh process: its wall time, peak RSS and the stage timings it printed."""
    env = os.environ | {"DUPFIND_CACHE_DIR": str(cache), "DUPFIND_NO_PROGRESS": "1"}
    started = time.perf_counter()
    with log.open("w") as stderr:
        code = subprocess.call(
            [sys.executable, "-c", MEASURED, "-v", *args], stdout=subprocess.DEVNULL, stderr=stderr, env=env
        )
    seconds = time.perf_counter() - started
    lines = log.read_text().splitlines()
    if code != 0:
        raise SystemExit(f"dupfind {' '.join(args)} failed:\n{log.read_text()}")
    stages = [line.removeprefix("dupfind: ") for line in lines if line.endswith(" s")]
    peak = next(int(line.split()[2]) for line in lines if line.startswith("peak kB "))
    return {"seconds": seconds, "peak_rss_mb": peak / 1e3, "stages": stages}


def warm_up(cache: Path, backend: list[str]) -> None:
    """Export the model into the cache folder and empty its embeddings: the first run times encoding only."""
    env = os.environ | {"DUPFIND_CACHE_DIR": str(cache)}
    subprocess.run([*DUPFIND, "compare", "warm", "up", *backend], capture_output=True, env=env, check=False)
    subprocess.run([*DUPFIND, "cache", "clear"], capture_output=True, env=env, check=True)


def cached_rows(cache: Path) -> int:
    env = os.environ | {"DUPFIND_CACHE_DIR": str(cache)}
    done = subprocess.run([*DUPFIND, "cache", "info", "--json"], capture_output=True, text=True, env=env, check=True)
    return sum(model["rows"] for model in json.loads(done.stdout)["models"])


def bench_size(n: int, real: list[str], args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    texts = questions(n, real)
    file, changed_file = folder / f"questions-{n}.csv", folder / f"questions-{n}-changed.csv"
    pd.DataFrame({"id": range(1, n + 1), "question": texts}).to_csv(file, index=False)
    step = round(1 / args.changed)
    changed = questions(n + len(real), real, seed=1)[len(real) :][:n]
    texts = [changed[k] if k % step == step - 1 else text for k, text in enumerate(texts)]
    pd.DataFrame({"id": range(1, n + 1), "question": texts}).to_csv(changed_file, index=False)
    cache, out = args.cache_dir or folder / f"cache-{n}", folder / f"pairs-{n}.parquet"
    backend = ["--backend", args.backend] if args.backend else []
    options = ["-o", str(out), "--index", args.index, *backend]
    log = folder / "stderr.txt"
    warm_up(cache, backend)
    result: dict[str, Any] = {"n": n, "real_rows": min(n, len(real)), "index": args.index}
    result["first"] = run(["mine", str(file), *options], cache, log)
    result["first"]["pairs"] = len(pd.read_parquet(out, columns=["score"]))
    result["first"]["cached_rows"] = cached_rows(cache)
    result["rerun"] = run(["mine", str(file), *options], cache, log)
    result["changed"] = run(["mine", str(changed_file), *options], cache, log)
    result["changed"]["encoded"] = cached_rows(cache) - result["first"]["cached_rows"]
    result["rerun_speedup"] = result["first"]["seconds"] / result["rerun"]["seconds"]
    for name in ("first", "rerun", "changed"):
        figures = result[name]
        stages = ", ".join(figures["stages"])
        print(f"  {name:8s} {figures['seconds']:8.1f} s {figures['peak_rss_mb']:8.0f} MB peak RSS ({stages})")
    print(f"  re-run {result['rerun_speedup']:.1f}x faster; 1% changed: {result['changed']['encoded']} rows encoded")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000", help="comma-separated numbers of questions")
    parser.add_argument("--index", default="auto", help="--index of dupfind mine")
    parser.add_argument("--backend", default=None, help="--backend of dupfind mine")
    parser.add_argument("--changed", type=float, default=0.01, help="share of rows changed for the third run")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="DUPFIND_CACHE_DIR of the runs (its embeddings are cleared"
        " first and kept after) [default: a temporary folder]",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is not here")
        return
    real = real_questions()
    results = []
    with tempfile.TemporaryDirectory(prefix="dupfind-e2e-") as folder:
        for n in map(int, args.sizes.split(",")):
            print(f"dupfind mine, {n} questions ({min(n, len(real))} real):")
            results.append(bench_size(n, real, args, Path(folder)))
    report = {"cores": len(os.sched_getaffinity(0)), "sizes": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
