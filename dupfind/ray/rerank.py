"""`--engine ray`'s re-ranking: the candidate pairs not yet scored in the work folder go through `map_batches` over
a pool of pair-scorer actors, each loading the re-ranker once from its path and the backend's name.

The scores are kept like the embeddings (`dupfind.ray.actors`): an `EmbeddingCache` of one score per pair at
`<work dir>/rerank` (`rerank_store`), keyed by both texts (`pair_keys`) and the scorer's fingerprint, so that a
re-run scores only the pairs it has not seen. `ray_reranker` gives the local `Reranker` (its fusion and rule
unchanged) whose cross-encoder scores come from the cluster, so that the pairs kept are those of a local run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dupfind.pairs.rerank import Reranker
from dupfind.ray.actors import ModelSpec, Workers, fill_work_store, run_on_actors
from dupfind.vectors.cache import EmbeddingCache
from dupfind.vectors.encoding import Progress
from dupfind.vectors.pair_scorer import Scores, pair_keys


def rerank_store(work_dir: Path) -> EmbeddingCache:
    """The cross-encoder scores kept in a work folder, by scorer fingerprint and pair."""
    return EmbeddingCache(work_dir.absolute() / "rerank", unit_rows=False)


@dataclass
class RayScoring:
    """How many candidate pairs the cluster's pair scorers were asked for, and how many of them they scored now
    (the others were read from the work folder)."""

    asked: int = 0
    scored: int = 0


def ray_reranker(
    local: Reranker,
    spec: ModelSpec,
    work_dir: Path,
    workers: Workers = Workers(),
    progress: Progress | None = None,
    tally: RayScoring | None = None,
) -> Reranker:
    """`local` (loaded on the driver, for its fingerprint and fusion) scoring its pairs on the cluster's actors
    instead, kept in the work folder rather than the local score cache; `tally` counts the pairs asked and scored."""

    def score_on_ray(first: list[str], second: list[str]) -> Scores:
        scores, scored = score_pairs_ray(first, second, spec, work_dir, workers, progress)
        if tally is not None:
            tally.asked += len(first)
            tally.scored += scored
        return scores

    return replace(local, cache=None, progress=None, score_all=score_on_ray)


def score_pairs_ray(
    first: Sequence[str],
    second: Sequence[str],
    spec: ModelSpec,
    work_dir: Path,
    workers: Workers = Workers(),
    progress: Progress | None = None,
) -> tuple[Scores, int]:
    """The cross-encoder's score of each pair `(first[i], second[i])`, scoring on the cluster only those not yet
    in the work folder for this scorer; and how many were scored now. `progress(done, total)` is called as
    blocks are stored."""
    if not first:
        return np.zeros(0, dtype=np.float32), 0
    store = rerank_store(work_dir)

    def score(rows: NDArray[np.intp]) -> None:
        import pyarrow as pa

        columns = {
            "first": pa.array([first[i] for i in rows.tolist()], pa.large_string()),
            "second": pa.array([second[i] for i in rows.tolist()], pa.large_string()),
        }
        run_on_actors(columns, ScoreActor, spec, store.root, workers, progress, len(rows))

    scores, scored = fill_work_store(store, spec.fingerprint, pair_keys(first, second), score, "pairs")
    assert scores is not None  # every pair was found, or scored now
    return np.ascontiguousarray(scores[:, 0]), scored


class ScoreActor:
    """Loads the re-ranker's pair scorer once; scores a batch of pairs (sorted by length, as locally) and stores
    the scores as one shard of the store at `root` (a work folder's `rerank_store(...).root`), never merging
    shards (the driver does)."""

    def __init__(self, spec: ModelSpec, root: str) -> None:
        from dupfind.vectors.backends import load_pair_scorer

        scorer = load_pair_scorer(spec.model, spec.backend, spec.precision, spec.device)
        spec.check_loaded(scorer.fingerprint, "re-ranker")
        self.reranker = Reranker(scorer, batch_size=spec.batch_size)
        self.store = EmbeddingCache(Path(root), unit_rows=False)

    def __call__(self, batch: Any) -> dict[str, NDArray[np.int64]]:
        first: list[str] = batch.column("first").to_pylist()
        second: list[str] = batch.column("second").to_pylist()
        if first:
            scores = self.reranker.cross_scores(first, second)
            self.store.store(self.reranker.scorer.fingerprint, pair_keys(first, second), scores[:, None], compact=False)
        return {"rows": np.array([len(first)], dtype=np.int64)}
