"""Encoding throughput of dupfind's default backend against sentence-transformers on torch fp32.

Encodes N real questions (default 10,000 of ../shared/data/quora/train-questions.csv) with both, at the
same batch size: the median of `--runs` timed runs after a warm-up, alternating the two so that a busy
machine slows both alike (on a shared machine, look at the best runs and per-round ratios too). Also
reports agreement (cosine of each question's two embeddings) and how many pairs at or above the mining
threshold differ (exact, brute force). Last, the compute bound: the GFLOP of the model's dense layers over
the questions' tokens, the float32 GEMM peak of this machine (torch, same shapes), and so the largest
speed-up over torch that any float32 backend could reach here. Writes bench/results/encode.json.

    .venv/bin/python bench/bench_encode.py [--n 10000] [--backend openvino] [--questions FILE]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dupfind.backends import DEFAULT_BACKEND, load_encoder
from dupfind.encoding import DEFAULT_BATCH_SIZE, Embeddings, encode
from dupfind.model import BUILTIN_MINING_THRESHOLD, builtin_model_dir

QUESTIONS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "quora" / "train-questions.csv"
RESULTS = Path(__file__).resolve().parent / "results" / "encode.json"
TORCH_THREADS = 2


def read_questions(file: Path, n: int) -> list[str]:
    """The first `n` questions of a CSV file with a `question` column."""
    with file.open(newline="", encoding="utf-8") as handle:
        return [row["question"] for row in itertools.islice(csv.DictReader(handle), n)]


def pairs_above(embeddings: Embeddings, threshold: float, chunk: int = 2048) -> set[tuple[int, int]]:
    """Every pair (i < j) whose cosine is at least `threshold`, by brute force."""
    found: set[tuple[int, int]] = set()
    for start in range(0, len(embeddings), chunk):
        rows, cols = np.nonzero(embeddings[start : start + chunk] @ embeddings.T >= threshold)
        rows += start
        keep = cols > rows
        found.update(zip(rows[keep].tolist(), cols[keep].tolist(), strict=True))
    return found


def timed_runs(runners: dict[str, Callable[[], Embeddings]], runs: int) -> dict[str, list[float]]:
    """Seconds of each run of each runner, alternating runners, after one warm-up run of each."""
    for run in runners.values():
        run()
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(runs):
        for name, run in runners.items():
            started = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - started)
    return seconds


def sgemm_peak(seconds: float = 2.0) -> float:
    """GFLOP/s of float32 matrix products shaped like the model's feed-forward layer (batch 64 x 16 tokens)."""
    import torch

    a, b = torch.rand(1024, 384), torch.rand(384, 1536)
    a @ b
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        count += 1
    return 2 * 1024 * 384 * 1536 * count / (time.perf_counter() - started) / 1e9


def linear_gflop(config: dict[str, int], tokens: int) -> float:
    """The multiply-adds of a BERT encoder's dense layers over `tokens` tokens (attention scores excluded)."""
    hidden, ffn = config["hidden_size"], config["intermediate_size"]
    return 2 * tokens * config["num_hidden_layers"] * (4 * hidden * hidden + 2 * hidden * ffn) / 1e9


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="number of questions")
    parser.add_argument("--questions", type=Path, default=QUESTIONS, help="CSV file with a question column")
    parser.add_argument("--backend", default=DEFAULT_BACKEND, help="dupfind backend [default: %(default)s]")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not args.questions.is_file():
        print(f"skipped: {args.questions} is not here")
        return
    texts = read_questions(args.questions, args.n)

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(TORCH_THREADS)
    reference = SentenceTransformer(str(builtin_model_dir()), device="cpu")
    encoder = load_encoder(None, args.backend)
    warm = texts[: 4 * args.batch_size]
    reference.encode(warm, batch_size=args.batch_size)
    encode(encoder, warm, args.batch_size)
    outputs: dict[str, Embeddings] = {}

    def run_torch() -> Embeddings:
        vectors = reference.encode(texts, batch_size=args.batch_size, convert_to_numpy=True, normalize_embeddings=True)
        outputs["torch"] = np.asarray(vectors, dtype=np.float32)
        return outputs["torch"]

    def run_dupfind() -> Embeddings:
        outputs[args.backend] = encode(encoder, texts, args.batch_size)
        return outputs[args.backend]

    names = ("torch fp32 (sentence-transformers)", f"dupfind {args.backend}")
    seconds = timed_runs({names[0]: run_torch, names[1]: run_dupfind}, args.runs)
    rates = {name: len(texts) / statistics.median(runs) for name, runs in seconds.items()}
    torch_rate, backend_rate = rates.values()
    torch_seconds, backend_seconds = seconds.values()
    round_speedups = [t / b for t, b in zip(torch_seconds, backend_seconds, strict=True)]

    expected, actual = outputs["torch"], outputs[args.backend]
    cosines = np.sum(expected * actual, axis=1)
    threshold = BUILTIN_MINING_THRESHOLD
    torch_pairs, backend_pairs = pairs_above(expected, threshold), pairs_above(actual, threshold)
    result = {
        "n": len(texts),
        "batch_size": args.batch_size,
        "backend": args.backend,
        "runs": args.runs,
        "seconds": seconds,
        "sentences_per_s": rates,
        "speedup": backend_rate / torch_rate,
        "speedup_per_round": round_speedups,
        "speedup_best_runs": min(torch_seconds) / min(backend_seconds),
        "min_cosine": float(cosines.min()),
        "sentences_below_0.9999": int(np.sum(cosines < 0.9999)),
        "max_abs_diff": float(np.abs(expected - actual).max()),
        "threshold": threshold,
        "pairs_torch": len(torch_pairs),
        "pairs_backend": len(backend_pairs),
        "pairs_changed": len(torch_pairs ^ backend_pairs),
        "machine": {"cpu": cpu_name(), "cores": len(os.sched_getaffinity(0)), "torch_threads": TORCH_THREADS},
    }
    tokens = sum(encoder.count_tokens(texts))
    gflop = linear_gflop(reference[0].auto_model.config.to_dict(), tokens)
    peak = sgemm_peak()
    result["bound"] = {
        "tokens": tokens,
        "dense_gflop": gflop,
        "sgemm_peak_gflop_s": peak,
        "gflop_s": {name: gflop / statistics.median(runs) for name, runs in seconds.items()},
        "max_fp32_speedup": statistics.median(torch_seconds) / (gflop / peak),
    }
    print(f"{len(texts)} questions, batch size {args.batch_size}, median of {args.runs} runs")
    print(f"{'encoder':40s} {'sentences/s':>12s} {'runs (s)':>24s}")
    for name, runs in seconds.items():
        print(f"{name:40s} {rates[name]:12.0f} {' '.join(f'{s:7.2f}' for s in runs):>24s}")
    print(
        f"speed-up: {result['speedup']:.2f}x (medians), {result['speedup_best_runs']:.2f}x (best runs),"
        f" per round: {', '.join(f'{ratio:.2f}x' for ratio in round_speedups)}"
    )
    print(
        f"agreement: min cosine {result['min_cosine']:.7f}, {result['sentences_below_0.9999']} sentences below 0.9999"
    )
    print(
        f"pairs >= {threshold}: torch {len(torch_pairs)}, {args.backend} {len(backend_pairs)},"
        f" changed {result['pairs_changed']}"
    )
    print(
        f"compute bound: {tokens} tokens need {gflop:.0f} GFLOP in the dense layers; float32 GEMM peak here"
        f" {peak:.0f} GFLOP/s; torch reaches {result['bound']['gflop_s'][names[0]]:.0f},"
        f" {args.backend} {result['bound']['gflop_s'][names[1]]:.0f}: at most"
        f" {result['bound']['max_fp32_speedup']:.2f}x torch in float32"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
