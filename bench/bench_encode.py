"""Encoding throughput of dupfind's backend at fp32, bf16 and int8, against sentence-transformers on torch fp32.

Prints the CPU's flags that `--precision auto` decides from, and what it chooses. Encodes N real questions
(default 10,000 of ../shared/data/quora/train-questions.csv) with the default model (`quora`) four ways, at
the same batch size: torch fp32 (sentence-transformers, the reference), then dupfind's backend in fp32, bf16
and int8; the median of `--runs` timed runs after a warm-up, alternating them so that a busy machine slows
all alike (on a shared machine, look at the best runs and per-round ratios too). Also reports agreement with
torch (cosine of each question's two embeddings) and how many pairs at or above the mining threshold differ
(exact, brute force). Last, the compute bound: the GFLOP of the model's dense layers over the questions'
tokens, and the GEMM peaks of this machine at the model's shapes (1024×384 by 384×1536): float32 with torch
(as sentence-transformers runs), and float32, bf16 and int8 with OpenVINO (one MatMul; int8: u8 activations ×
i8 weights from FakeQuantize, which OpenVINO runs as a u8 FullyConnected on oneDNN's int8 kernels),
alternated in rounds; each encoder's GFLOP/s as a fraction of its precision's peak. Writes
bench/results/encode.json.

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

from dupfind.thresholds import BUILTIN_MINING_THRESHOLD
from dupfind.vectors.backends import DEFAULT_BACKEND, INT8_BACKENDS, load_encoder, resolve_choice
from dupfind.vectors.backends.torch_backend import TorchEncoder
from dupfind.vectors.encoding import DEFAULT_BATCH_SIZE, Embeddings, Encoder, encode
from dupfind.vectors.precision import cpu_features

QUESTIONS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "quora" / "train-questions.csv"
RESULTS = Path(__file__).resolve().parent / "results" / "encode.json"
TORCH_THREADS = 2
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16")  # those auto and the kernels use


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


GEMM_SHAPE = (1024, 384, 1536)  # the feed-forward layer over a batch of 64 questions of 16 tokens


def gemm_runners() -> dict[str, Callable[[], object]]:
    """One product at the model's shapes: float32 with torch, float32, bf16 and int8 with OpenVINO."""
    import openvino as ov
    import openvino.opset13 as ops
    import torch

    m, k, n = GEMM_SHAPE
    rng = np.random.default_rng(0)
    a, b = torch.rand(m, k), torch.rand(k, n)
    x = rng.standard_normal((m, k)).astype(np.float32)
    weights = (rng.standard_normal((k, n)) * 0.05).astype(np.float32)

    def openvino_matmul(int8: bool, hint: str = "f32") -> Callable[[], object]:
        source = ops.parameter([m, k], np.float32)
        left, right = source.output(0), ops.constant(weights).output(0)
        if int8:  # FakeQuantize on both sides: OpenVINO's low-precision transformations make it an int8 product
            low, high = ops.constant(np.float32(-4)), ops.constant(np.float32(4))
            left = ops.fake_quantize(left, low, high, low, high, 256).output(0)
            low, high = ops.constant(np.float32(-0.25)), ops.constant(np.float32(0.25))
            right = ops.fake_quantize(right, low, high, low, high, 255).output(0)
        model = ov.Model([ops.matmul(left, right, False, False)], [source])
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": hint}
        request = ov.Core().compile_model(model, "CPU", config).create_infer_request()
        return lambda: request.infer({0: x})

    return {
        "fp32 (torch)": lambda: a @ b,
        "fp32 (openvino)": openvino_matmul(False),
        "bf16 (openvino)": openvino_matmul(False, "bf16"),
        "int8 (openvino)": openvino_matmul(True),
    }


def gemm_peaks(rounds: int = 5, seconds: float = 0.5) -> dict[str, float]:
    """Median GFLOP/s of each GEMM of `gemm_runners` over `rounds` rounds that alternate them."""
    m, k, n = GEMM_SHAPE
    runners = gemm_runners()
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            run()
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                run()
                count += 1
            rates[name].append(2 * m * k * n * count / (time.perf_counter() - started) / 1e9)
    return {name: statistics.median(values) for name, values in rates.items()}


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
    flags = sorted(cpu_features() & set(FLAGS))
    print(f"CPU: {cpu_name()}; flags: {' '.join(flags) or 'none of ' + ', '.join(FLAGS)}")
    print(f"--precision auto here: {resolve_choice().describe()}")

    import torch

    torch.set_num_threads(TORCH_THREADS)
    torch_name = "torch fp32 (sentence-transformers)"
    reference = load_encoder(None, "torch", "fp32", "cpu")
    assert isinstance(reference, TorchEncoder)
    names = {precision: f"dupfind {args.backend} {precision}" for precision in ("fp32", "bf16", "int8")}
    encoders: dict[str, Encoder] = {
        torch_name: reference,
        names["fp32"]: load_encoder(None, args.backend, "fp32", "cpu"),
        **{names[precision]: load_encoder(None, INT8_BACKENDS[0], precision, "cpu") for precision in ("bf16", "int8")},
    }
    warm = texts[: 4 * args.batch_size]
    for encoder in encoders.values():
        encode(encoder, warm, args.batch_size)
    outputs: dict[str, Embeddings] = {}

    def runner(name: str, encoder: Encoder) -> Callable[[], Embeddings]:
        def run() -> Embeddings:
            outputs[name] = encode(encoder, texts, args.batch_size)
            return outputs[name]

        return run

    runners = {name: runner(name, encoder) for name, encoder in encoders.items()}
    seconds = timed_runs(runners, args.runs)
    rates = {name: len(texts) / statistics.median(runs) for name, runs in seconds.items()}

    def per_round(slower: str, faster: str) -> list[float]:
        return [s / f for s, f in zip(seconds[slower], seconds[faster], strict=True)]

    speedups = {f"{name} / torch": per_round(torch_name, name) for name in names.values()}
    speedups |= {f"{names[p]} / {names['fp32']}": per_round(names["fp32"], names[p]) for p in ("bf16", "int8")}
    threshold = BUILTIN_MINING_THRESHOLD
    expected = outputs[torch_name]
    torch_pairs = pairs_above(expected, threshold)
    agreement = {}
    for name in names.values():
        cosines = np.sum(expected * outputs[name], axis=1)
        found = pairs_above(outputs[name], threshold)
        agreement[name] = {
            "min_cosine": float(cosines.min()),
            "sentences_below_0.9999": int(np.sum(cosines < 0.9999)),
            "max_abs_diff": float(np.abs(expected - outputs[name]).max()),
            "pairs": len(found),
            "pairs_changed": len(torch_pairs ^ found),
        }
    tokens = sum(encoders[names["fp32"]].count_tokens(texts))
    gflop = linear_gflop(reference.model[0].auto_model.config.to_dict(), tokens)
    peaks = gemm_peaks()
    fp32_peak, int8_peak = max(peaks["fp32 (torch)"], peaks["fp32 (openvino)"]), peaks["int8 (openvino)"]
    gflop_s = {name: gflop / statistics.median(runs) for name, runs in seconds.items()}
    peak_of = {torch_name: fp32_peak, names["fp32"]: fp32_peak, names["bf16"]: peaks["bf16 (openvino)"]}
    peak_of[names["int8"]] = int8_peak
    result = {
        "cpu_flags": flags,
        "auto": vars(resolve_choice()),
        "model": reference.ref.name,
        "n": len(texts),
        "batch_size": args.batch_size,
        "backend": args.backend,
        "runs": args.runs,
        "seconds": seconds,
        "sentences_per_s": rates,
        "speedup_medians": {name: statistics.median(values) for name, values in speedups.items()},
        "speedup_per_round": speedups,
        "threshold": threshold,
        "pairs_torch": len(torch_pairs),
        "agreement_with_torch": agreement,
        "machine": {"cpu": cpu_name(), "cores": len(os.sched_getaffinity(0)), "torch_threads": TORCH_THREADS},
        "bound": {
            "tokens": tokens,
            "dense_gflop": gflop,
            "gemm_peak_gflop_s": peaks,
            "gflop_s": gflop_s,
            "fraction_of_peak": {name: gflop_s[name] / peak_of[name] for name in seconds},
            "int8_over_fp32_peak": int8_peak / fp32_peak,
            "max_fp32_speedup": statistics.median(seconds[torch_name]) / (gflop / fp32_peak),
            "max_int8_speedup": statistics.median(seconds[torch_name]) / (gflop / int8_peak),
        },
    }
    print(f"{len(texts)} questions, batch size {args.batch_size}, median of {args.runs} runs (alternated)")
    print(f"{'encoder':40s} {'sentences/s':>12s} {'GFLOP/s':>8s} {'of peak':>8s} {'runs (s)':>24s}")
    for name, runs in seconds.items():
        share = result["bound"]["fraction_of_peak"][name]
        print(
            f"{name:40s} {rates[name]:12.0f} {gflop_s[name]:8.0f} {share:8.0%}"
            f" {' '.join(f'{s:7.2f}' for s in runs):>24s}"
        )
    for name, values in speedups.items():
        rounds = ", ".join(f"{ratio:.2f}x" for ratio in values)
        print(f"speed-up {name}: {statistics.median(values):.2f}x (median of rounds: {rounds})")
    for name, figures in agreement.items():
        print(
            f"{name}: min cosine with torch {figures['min_cosine']:.7f}, {figures['sentences_below_0.9999']}"
            f" below 0.9999; pairs >= {threshold}: torch {len(torch_pairs)}, {figures['pairs']},"
            f" changed {figures['pairs_changed']}"
        )
    print(
        f"compute bound: {tokens} tokens need {gflop:.0f} GFLOP in the dense layers; GEMM peaks here: "
        + ", ".join(f"{name} {value:.0f}" for name, value in peaks.items())
        + f" GFLOP/s; int8 peak / fp32 peak {result['bound']['int8_over_fp32_peak']:.2f}: at most"
        f" {result['bound']['max_fp32_speedup']:.2f}x torch in float32, {result['bound']['max_int8_speedup']:.2f}x"
        " in int8"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
