"""Cold start of `dupfind compare "a" "b"` against loading the same model with sentence-transformers.

Each run is a fresh process, timed from start to exit: `dupfind compare A B` (default backend, its export
already cached) and `python -c` that imports sentence-transformers, loads the built-in model on torch and
prints the cosine of the same two questions. Runs alternate; the median of `--runs` is reported.
Writes bench/results/compare.json.

    .venv/bin/python bench/bench_compare.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from dupfind.vectors.model import builtin_model_dir

RESULTS = Path(__file__).resolve().parent / "results" / "compare.json"
QUESTIONS = ("What is your favorite anime and why?", "What's your favorite anime? And why?")
SENTENCE_TRANSFORMERS = (
    "import sys\n"
    "from sentence_transformers import SentenceTransformer, util\n"
    "model = SentenceTransformer(sys.argv[1], device='cpu')\n"
    "a, b = model.encode([sys.argv[2], sys.argv[3]], convert_to_tensor=True)\n"
    "print(float(util.cos_sim(a, b)))\n"
)


def wall(command: list[str]) -> tuple[float, str]:
    """Seconds from start to exit of a fresh process, and what it printed."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):  # compare exits 1 for "not duplicates"
        raise SystemExit(f"{command[:3]} failed:\n{done.stderr}")
    return seconds, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    commands = {
        "dupfind compare": [sys.executable, "-m", "dupfind", "compare", *QUESTIONS],
        "sentence-transformers": [sys.executable, "-c", SENTENCE_TRANSFORMERS, str(builtin_model_dir()), *QUESTIONS],
    }
    wall(commands["dupfind compare"])  # exports the model on first use, and warms the disk cache
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    printed: dict[str, str] = {}
    for _ in range(args.runs):
        for name, command in commands.items():
            elapsed, printed[name] = wall(command)
            seconds[name].append(elapsed)
    medians = {name: statistics.median(runs) for name, runs in seconds.items()}
    result = {
        "runs": args.runs,
        "seconds": seconds,
        "median_seconds": medians,
        "speedup": medians["sentence-transformers"] / medians["dupfind compare"],
        "printed": printed,
    }
    for name, runs in seconds.items():
        print(f"{name:24s} median {medians[name]:5.2f} s   runs {' '.join(f'{s:.2f}' for s in runs)}")
    print(f"dupfind compare starts {result['speedup']:.1f}x faster; printed {printed}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
