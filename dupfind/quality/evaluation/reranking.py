"""The two stages of re-ranking against labels: the bi-encoder's candidates (their recall), then the re-ranker's
decisions among them (precision, recall, F1 at the threshold in force and at the best one, and AP).

A pair the bi-encoder does not propose is never a duplicate, so recall and AP count every gold duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dupfind.pairs.mining import mine_embeddings
from dupfind.pairs.rerank import Reranker
from dupfind.quality.evaluation.curve import Curve, Labels
from dupfind.quality.evaluation.mining import MINING_TOP_K, MiningScores, gold_pair_count, kept_pairs_scores
from dupfind.vectors.encoding import Embeddings


@dataclass(frozen=True)
class RerankReport:
    """Candidates proposed by the bi-encoder (at cosine >= `candidate_threshold`), and the re-ranker's decisions."""

    gold: int  # duplicate pairs (pairs task) or pairs inside a gold cluster (mining task)
    candidate_threshold: float
    candidates: int
    candidate_recall: float  # share of the gold duplicates among the candidates
    at_threshold: MiningScores
    best_f1: MiningScores
    average_precision: float


def evaluate_reranked_pairs(
    cosine: NDArray[np.float32],
    labels: Labels,
    first: list[str],
    second: list[str],
    reranker: Reranker,
    candidate: float,
    threshold: float,
) -> RerankReport:
    """Labeled pairs: the bi-encoder proposes those with `cosine >= candidate`, the re-ranker scores them."""
    proposed = np.flatnonzero(cosine >= candidate)
    scores = reranker.score(
        [first[i] for i in proposed.tolist()], [second[i] for i in proposed.tolist()], cosine[proposed]
    )
    return _report(scores, labels[proposed], int(labels.sum()), candidate, threshold)


def evaluate_reranked_mining(
    embeddings: Embeddings,
    clusters: NDArray[np.int64],
    texts: list[str],
    reranker: Reranker,
    candidate: float,
    threshold: float,
    top_k: int = MINING_TOP_K,
) -> RerankReport:
    """Mining as `dupfind mine --rerank`: candidates mined at `candidate` (top-k per question), re-ranked."""
    gold = gold_pair_count(clusters)
    candidates = mine_embeddings(embeddings, candidate, top_k, index="exact")
    scored = reranker.rerank(candidates, texts, 0.0)
    return _report(
        scored.rerank_scores if scored.rerank_scores is not None else np.zeros(0, dtype=np.float32),
        clusters[scored.left] == clusters[scored.right],
        gold,
        candidate,
        threshold,
    )


def _report(scores: NDArray[np.float32], hits: Labels, gold: int, candidate: float, threshold: float) -> RerankReport:
    curve = Curve.of(scores, hits, gold)
    best_threshold, f1, precision, recall = curve.best_f1() if len(scores) else (threshold, 0.0, 0.0, 0.0)
    return RerankReport(
        gold=gold,
        candidate_threshold=candidate,
        candidates=len(scores),
        candidate_recall=int(hits.sum()) / max(gold, 1),
        at_threshold=kept_pairs_scores(hits[scores >= threshold], threshold, gold),
        best_f1=MiningScores(best_threshold, int(np.sum(scores >= best_threshold)), precision, recall, f1),
        average_precision=curve.average_precision() if len(scores) else 0.0,
    )
