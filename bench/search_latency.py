"""Latency of `dupfind search` for one question against a 100k-question index, once the index is open.

The index holds random unit vectors of the built-in model's size (384): exact search costs the same
whatever the vectors are. `--encode` adds the time to encode the question with the real model.

    .venv/bin/python bench/search_latency.py [--size 100000] [--encode]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from dupfind.pairs.index import Index, open_index, save_index
from dupfind.thresholds import Thresholds
from dupfind.vectors.backends import load_encoder
from dupfind.vectors.encoding import encode, normalize


def milliseconds(times: list[float]) -> str:
    values = np.array(times) * 1000
    return f"median {np.median(values):.2f} ms, p95 {np.percentile(values, 95):.2f} ms, max {values.max():.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="questions in the index")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--encode", action="store_true", help="also encode each question with the built-in model")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    embeddings = normalize(rng.normal(size=(args.size, args.dim)))
    texts = [f"question {i}" for i in range(args.size)]
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "random.dfi")
        started = time.perf_counter()
        save_index(Index(list(range(args.size)), texts, embeddings, "random", "random", Thresholds(0.8, 0.8)), path)
        print(f"built a {args.size}×{args.dim} index in {time.perf_counter() - started:.2f} s")
        started = time.perf_counter()
        index = open_index(path)
        print(f"opened it in {time.perf_counter() - started:.2f} s")

    queries = normalize(rng.normal(size=(args.runs, args.dim)))
    times = []
    for query in queries:
        started = time.perf_counter()
        index.search(query[None, :], args.k)
        times.append(time.perf_counter() - started)
    print(f"search, one query, k={args.k}: {milliseconds(times)}")

    if args.encode:
        encoder = load_encoder()
        question = "How do I reset my password if I no longer have access to my email?"
        encode(encoder, [question])
        times = []
        for _ in range(min(args.runs, 50)):
            started = time.perf_counter()
            vector = encode(encoder, [question])
            times.append(time.perf_counter() - started)
        print(f"encoding one question: {milliseconds(times)}")
        if vector.shape[1] != args.dim:
            print(f"(the model's vectors have {vector.shape[1]} dimensions, not {args.dim})")


if __name__ == "__main__":
    main()
