"""Mining over gold clusters: mined pairs, and the ranked top-k candidates, against every pair inside a cluster."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.pairs.mining import MinedPairs, mine_embeddings
from dupfind.quality.evaluation.curve import Curve, f1_score
from dupfind.quality.evaluation.retrieval import top_neighbours
from dupfind.vectors.encoding import Embeddings

MINING_TOP_K = 20


@dataclass(frozen=True)
class MiningScores:
    """Mined pairs with score ≥ threshold against the gold pairs."""

    threshold: float
    pairs: int
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class MiningReport:
    """Mining against the gold pairs: at the threshold in force (as `dupfind mine`), at the best-F1 threshold, and AP.

    `truncated` counts the questions that had more than `top_k` neighbours above the threshold in force.
    """

    questions: int
    gold_pairs: int
    top_k: int
    candidates: int
    at_threshold: MiningScores
    truncated: int
    best_f1: MiningScores
    average_precision: float


def candidate_pairs(embeddings: Embeddings, top_k: int = MINING_TOP_K) -> MinedPairs:
    """Every pair among the `top_k` neighbours of either of its rows, best first (no threshold)."""
    indices, scores = top_neighbours(embeddings, top_k)
    source = np.repeat(np.arange(len(embeddings)), indices.shape[1])
    left, right = np.minimum(source, indices.ravel()), np.maximum(source, indices.ravel())
    _, first = np.unique(left * len(embeddings) + right, return_index=True)
    order = first[np.argsort(-scores.ravel()[first], kind="stable")]
    return MinedPairs(left[order], right[order], scores.ravel()[order])


@dataclass(frozen=True)
class MiningRanking:
    """The top-k candidate pairs ranked by score, against the gold pairs: best F1 and average precision."""

    gold_pairs: int
    candidates: int
    best_f1: MiningScores
    average_precision: float


def gold_pair_count(clusters: NDArray[np.int64]) -> int:
    """How many pairs of questions share a cluster: the duplicate pairs mining should find."""
    sizes = np.bincount(clusters)
    return int(np.sum(sizes * (sizes - 1) // 2))


def rank_candidates(embeddings: Embeddings, clusters: NDArray[np.int64], top_k: int = MINING_TOP_K) -> MiningRanking:
    """Best F1 and AP of the top-k candidates against every pair inside a cluster, as `ParaphraseMiningEvaluator`."""
    gold = gold_pair_count(clusters)
    if gold == 0:
        raise DupfindError("no cluster holds two or more questions, so there are no duplicates to find")
    candidates = candidate_pairs(embeddings, top_k)
    curve = Curve.of(candidates.scores, clusters[candidates.left] == clusters[candidates.right], gold)
    threshold, f1, precision, recall = curve.best_f1()
    best = MiningScores(threshold, int(np.sum(candidates.scores >= threshold)), precision, recall, f1)
    return MiningRanking(gold, len(candidates), best, curve.average_precision())


def evaluate_mining(
    embeddings: Embeddings, clusters: NDArray[np.int64], threshold: float, top_k: int = MINING_TOP_K
) -> MiningReport:
    """Mining at the threshold in force (exactly as `dupfind mine --top-k`) and over the ranked top-k candidates."""
    ranking = rank_candidates(embeddings, clusters, top_k)
    mined = mine_embeddings(embeddings, threshold, top_k, index="exact")
    return MiningReport(
        questions=len(clusters),
        gold_pairs=ranking.gold_pairs,
        top_k=top_k,
        candidates=ranking.candidates,
        at_threshold=_mining_scores(mined, clusters, threshold, ranking.gold_pairs),
        truncated=mined.truncated,
        best_f1=ranking.best_f1,
        average_precision=ranking.average_precision,
    )


def _mining_scores(mined: MinedPairs, clusters: NDArray[np.int64], threshold: float, gold: int) -> MiningScores:
    return kept_pairs_scores(clusters[mined.left] == clusters[mined.right], threshold, gold)


def kept_pairs_scores(hits: NDArray[np.bool_], threshold: float, gold: int) -> MiningScores:
    """Precision, recall and F1 of the pairs kept at `threshold`; `hits`: which of them are gold pairs."""
    correct = int(np.sum(hits))
    precision = correct / max(len(hits), 1)
    recall = correct / max(gold, 1)
    return MiningScores(float(threshold), len(hits), precision, recall, f1_score(correct, len(hits), gold))
