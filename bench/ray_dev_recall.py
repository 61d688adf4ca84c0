"""Pair recall of `--engine ray`'s mining against local `mine --index exact` on ../shared/data/quora/dev-questions.csv.

The questions are embedded once (the built-in model, OpenVINO, through the embedding cache of
`DUPFIND_CACHE_DIR`), then mined both ways from the same embeddings at the model's default threshold:
locally with `--index exact` (`mining.mine_grouped`), and on a local Ray with the engine's distributed
inverted-file index (`ray_engine.mine_embeddings_ray` + `mining.expand_identical`, what `mine --engine ray`
runs after encoding). The encoders of the two engines agree to ~2e-6 on a score (tests/test_ray_engine.py);
this measures what the distributed index misses. Writes bench/results/ray_dev.json.

    DUPFIND_CACHE_DIR=... .venv/bin/python bench/ray_dev_recall.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from dupfind.backends import load_encoder
from dupfind.embedder import Embedder
from dupfind.embedding_cache import EmbeddingCache
from dupfind.mining import DEFAULT_TOP_K, expand_identical, mine_grouped, unique_texts
from dupfind.model import load_thresholds, resolve_model
from dupfind.ray_engine import mine_embeddings_ray, ray_session
from dupfind.tables import load_questions

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "quora" / "dev-questions.csv"
RESULTS = Path(__file__).resolve().parent / "results" / "ray_dev.json"


def main() -> None:
    questions = load_questions(str(DATA))
    threshold = load_thresholds(resolve_model(None)).mining
    first, inverse = unique_texts(questions.texts)
    started = time.perf_counter()
    embeddings = Embedder(load_encoder(None, "openvino"), EmbeddingCache()).embed(
        [questions.texts[row] for row in first.tolist()]
    )
    encoded = time.perf_counter() - started
    started = time.perf_counter()
    exact = mine_grouped(embeddings, inverse, threshold, DEFAULT_TOP_K, "exact")
    exact_seconds = time.perf_counter() - started
    with ray_session():
        started = time.perf_counter()
        mined, truncated = mine_embeddings_ray(embeddings, threshold, DEFAULT_TOP_K)
        on_ray = expand_identical(mined, truncated, inverse, DEFAULT_TOP_K)
        ray_seconds = time.perf_counter() - started
    found = {
        (a, b): s for a, b, s in zip(on_ray.left.tolist(), on_ray.right.tolist(), on_ray.scores.tolist(), strict=True)
    }
    wanted = {
        (a, b): s for a, b, s in zip(exact.left.tolist(), exact.right.tolist(), exact.scores.tolist(), strict=True)
    }
    common = found.keys() & wanted.keys()
    report = {
        "file": str(DATA),
        "questions": len(questions),
        "distinct": len(first),
        "threshold": threshold,
        "exact_pairs": len(wanted),
        "ray_pairs": len(found),
        "found_share": len(common) / max(1, len(wanted)),
        "extra_pairs": len(found.keys() - wanted.keys()),
        "extra_below_threshold": sum(score < threshold for key, score in found.items() if key not in wanted),
        "max_score_difference": max((abs(found[key] - wanted[key]) for key in common), default=0.0),
        "truncated_exact": exact.truncated,
        "truncated_ray": on_ray.truncated,
        "seconds": {"embed": encoded, "mine_exact": exact_seconds, "mine_ray": ray_seconds},
    }
    print(json.dumps(report, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    assert np.isfinite(report["found_share"])


if __name__ == "__main__":
    main()
