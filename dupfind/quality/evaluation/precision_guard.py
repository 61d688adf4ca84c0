"""The quality guard of a lower precision: does it find the same duplicates as fp32?

Agreement of the vectors (cosine ≥ 0.9999) rules int8 out by construction; what matters to users is the
duplicates found. Each precision is judged at its own calibrated thresholds, on labeled pairs (F1 at the
pair threshold, AP), on clustered questions (mining F1 at the mining threshold, and how many of the pairs
fp32 mines the candidate mines too) and on retrieval (nDCG@10).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dupfind.pairs.mining import mine_embeddings
from dupfind.quality.evaluation.labeled import Labels
from dupfind.quality.evaluation.mining import evaluate_mining
from dupfind.quality.evaluation.pairs import Scores, evaluate_pairs
from dupfind.quality.evaluation.retrieval import evaluate_retrieval
from dupfind.thresholds import Thresholds
from dupfind.vectors.encoding import Embeddings

MAX_F1_DROP = 0.003  # 0.3 points
MAX_AP_DROP = 0.003
MAX_NDCG_DROP = 0.002
MIN_PAIRS_KEPT = 0.98


@dataclass(frozen=True)
class Quality:
    """The figures the guard compares, of one precision at its own thresholds."""

    pair_f1: float
    pair_best_f1: float
    pair_ap: float
    mining_f1: float
    mining_pairs: int
    ndcg_at_10: float


@dataclass(frozen=True)
class Guard:
    """The reference's and the candidate's figures, and which checks the candidate passes."""

    reference: Quality
    candidate: Quality
    pairs_kept: float  # share of the reference's mined pairs that the candidate mines too
    checks: dict[str, bool]

    @property
    def passed(self) -> bool:
        return all(self.checks.values())


def quality(
    scores: Scores, labels: Labels, embeddings: Embeddings, clusters: np.typing.NDArray[np.int64], at: Thresholds
) -> Quality:
    """The guard's figures of pair scores with their labels and of clustered questions' embeddings."""
    pairs = evaluate_pairs(scores, labels, at.pair)
    mining = evaluate_mining(embeddings, clusters, at.mining)
    return Quality(
        pair_f1=pairs.at_threshold.f1,
        pair_best_f1=pairs.best_f1.f1,
        pair_ap=pairs.average_precision,
        mining_f1=mining.at_threshold.f1,
        mining_pairs=mining.at_threshold.pairs,
        ndcg_at_10=evaluate_retrieval(embeddings, clusters).metrics["ndcg@10"],
    )


def judge(
    reference: Quality,
    candidate: Quality,
    reference_embeddings: Embeddings,
    candidate_embeddings: Embeddings,
    thresholds: tuple[Thresholds, Thresholds],
) -> Guard:
    """Compare a candidate precision with the reference on the same questions, each at its own thresholds."""
    mined = [
        mine_embeddings(embeddings, at.mining, index="exact")
        for embeddings, at in zip((reference_embeddings, candidate_embeddings), thresholds, strict=True)
    ]
    found = [set(zip(pairs.left.tolist(), pairs.right.tolist(), strict=True)) for pairs in mined]
    kept = len(found[0] & found[1]) / max(len(found[0]), 1)
    checks = {
        "pair F1": reference.pair_f1 - candidate.pair_f1 <= MAX_F1_DROP,
        "pair AP": reference.pair_ap - candidate.pair_ap <= MAX_AP_DROP,
        "mining F1": reference.mining_f1 - candidate.mining_f1 <= MAX_F1_DROP,
        "mined pairs kept": kept >= MIN_PAIRS_KEPT,
        "nDCG@10": reference.ndcg_at_10 - candidate.ndcg_at_10 <= MAX_NDCG_DROP,
    }
    return Guard(reference, candidate, kept, checks)
