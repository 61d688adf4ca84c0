"""What one node of `mine --engine ray --backend torch --gpus-per-actor G` encodes per second, on a GPU machine.

Ray is not needed: each actor of the pool is `dupfind.ray.encode`'s encoder actor, which loads the encoder
once and, per block of `BLOCK_ROWS` questions, encodes it and stores it as one shard of the work folder's
embedding store. This script runs that same actor class in plain processes, as Ray would place them on one node:

1. the baseline, in the same run: one actor on the node's CPUs (torch fp32, every core), on a subset;
2. one actor on the GPU (torch fp16, `--gpus-per-actor 1`), at several `--batch-size`s;
3. K actors sharing the GPU (`--gpus-per-actor 1/K`), each a process with its share of the questions;
4. the agreement of the GPU's fp16 vectors with the CPU's fp32 ones on the baseline's questions;
5. local `dupfind mine --backend torch --device cuda` end to end (read, encode, mine, write), for comparison.

Questions: the `--questions` CSV's (a `question` column; ../shared/data/quora/dev-questions.csv by default),
then perturbed copies of them up to `--n` (bench_e2e.py's augmentation). Writes bench/results/gpu_node.json
(or `--out`) after each part.

    python bench/bench_gpu_node.py --questions dev-questions.csv --n 400000   # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bench_e2e import DATA, questions, run

from dupfind.ray.actors import ModelSpec
from dupfind.ray.encode import EncodeActor, work_store

RESULTS = Path(__file__).resolve().parent / "results" / "gpu_node.json"


def torch_actor(device: str, batch_size: int, folder: Path) -> EncodeActor:
    """The encoder actor of `--engine ray --backend torch` on a device (cuda: as with `--gpus-per-actor`)."""
    from dupfind.vectors.backends.torch_backend import torch_fingerprint
    from dupfind.vectors.model import resolve_model

    fingerprint = torch_fingerprint(resolve_model(None), device)
    return EncodeActor(
        ModelSpec.of(None, "torch", fingerprint, batch_size, device=device), str(work_store(folder).root)
    )


def encode_all(actor: EncodeActor, texts: list[str]) -> float:
    """Seconds the actor takes to encode and store `texts`, block by block, after one warm-up block."""
    import pyarrow as pa

    from dupfind.ray.actors import BLOCK_ROWS

    actor(pa.table({"text": texts[:BLOCK_ROWS]}))  # warm-up: CUDA context, kernels
    started = time.perf_counter()
    for start in range(0, len(texts), BLOCK_ROWS):
        actor(pa.table({"text": texts[start : start + BLOCK_ROWS]}))  # returns once the shard is written
    return time.perf_counter() - started


def actor_rate(texts: list[str], device: str, batch_size: int, folder: Path) -> dict[str, Any]:
    """Questions per second of one encoder actor over `texts`, and its vectors."""
    from dupfind.vectors.cache import text_keys

    started = time.perf_counter()
    actor = torch_actor(device, batch_size, folder)
    loaded = time.perf_counter() - started
    seconds = encode_all(actor, texts)
    vectors, found = work_store(folder).lookup(actor.encoder.fingerprint, text_keys(texts))
    assert found.all() and vectors is not None
    return {
        "device": device,
        "batch_size": batch_size,
        "questions": len(texts),
        "load_seconds": loaded,
        "seconds": seconds,
        "per_second": len(texts) / seconds,
        "vectors": vectors,
    }


def _shared_actor(args: tuple[list[str], str, int, str, Any]) -> float:
    texts, device, batch_size, folder, barrier = args
    actor = torch_actor(device, batch_size, Path(folder))
    barrier.wait()
    return encode_all(actor, texts)


def shared_gpu_rate(
    texts: list[str], actors: int, batch_size: int, folder: Path, device: str = "cuda"
) -> dict[str, Any]:
    """Questions per second of `actors` processes sharing the GPU, each encoding its share of `texts`."""
    context = mp.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(actors)
        shares = [texts[k::actors] for k in range(actors)]
        with context.Pool(actors) as pool:
            seconds = pool.map(
                _shared_actor,
                [(share, device, batch_size, str(folder / str(k)), barrier) for k, share in enumerate(shares)],
            )
    wall = max(seconds)
    return {
        "actors": actors,
        "batch_size": batch_size,
        "questions": len(texts),
        "seconds": wall,
        "per_second": len(texts) / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=DATA / "dev-questions.csv")
    parser.add_argument("--n", type=int, default=400_000, help="questions the GPU actors encode")
    parser.add_argument("--cpu-n", type=int, default=16_384, help="questions of the CPU baseline")
    parser.add_argument("--batch-sizes", default="64,256,1024")
    parser.add_argument("--actors", default="2,4")
    parser.add_argument("--e2e-n", type=int, default=400_000, help="questions of the local end-to-end run (0: none)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("skipped: torch sees no CUDA device")
        return
    real = list(dict.fromkeys(pd.read_csv(args.questions).question.dropna().astype(str)))
    texts = questions(args.n, real)
    report: dict[str, Any] = {
        "gpu": torch.cuda.get_device_name(),
        "cpu_cores": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
    }
    with tempfile.TemporaryDirectory(prefix="dupfind-gpu-") as temporary:
        folder = Path(temporary)
        os.environ["DUPFIND_CACHE_DIR"] = str(folder / "cache")
        baseline = actor_rate(texts[: args.cpu_n], "cpu", 64, folder / "cpu")
        cpu_vectors = baseline.pop("vectors")
        report["cpu_actor"] = baseline
        print(f"CPU actor (torch fp32, {report['cpu_cores']} cores): {baseline['per_second']:.0f} questions/s")
        write(args.out, report)
        report["gpu_actor"] = []
        for batch_size in [int(size) for size in args.batch_sizes.split(",")]:
            found = actor_rate(texts, "cuda", batch_size, folder / f"gpu-{batch_size}")
            vectors = found.pop("vectors")
            found["speedup_vs_cpu_actor"] = found["per_second"] / baseline["per_second"]
            cosines = np.sum(vectors[: args.cpu_n] * cpu_vectors, axis=1)
            found["min_cosine_vs_cpu"] = float(cosines.min())
            report["gpu_actor"].append(found)
            print(
                f"GPU actor, batch {batch_size}: {found['per_second']:.0f} questions/s "
                f"({found['speedup_vs_cpu_actor']:.1f}x the CPU actor), min cosine vs fp32 {cosines.min():.5f}"
            )
            write(args.out, report)
        best = max(report["gpu_actor"], key=lambda found: found["per_second"])["batch_size"]
        report["shared_gpu"] = []
        for actors in [int(count) for count in args.actors.split(",") if count]:
            found = shared_gpu_rate(texts, actors, best, folder / f"shared-{actors}")
            found["speedup_vs_cpu_actor"] = found["per_second"] / baseline["per_second"]
            report["shared_gpu"].append(found)
            print(f"{actors} actors sharing the GPU, batch {best}: {found['per_second']:.0f} questions/s")
            write(args.out, report)
        if args.e2e_n:
            file = folder / "questions.csv"
            pd.DataFrame({"id": range(1, args.e2e_n + 1), "question": questions(args.e2e_n, real)}).to_csv(
                file, index=False
            )
            backend = ["--backend", "torch", "--device", "cuda", "--batch-size", str(best)]
            found = run(
                ["mine", str(file), "-o", str(folder / "pairs.parquet"), *backend],
                folder / "cache-e2e",
                folder / "stderr.txt",
            )
            found["questions"] = args.e2e_n
            report["local_mine_cuda"] = found
            print(
                f"local dupfind mine on the GPU, {args.e2e_n} questions: {found['seconds']:.1f} s ({found['stages']})"
            )
            write(args.out, report)


def write(out: Path, report: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
