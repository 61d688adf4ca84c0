"""The held-out split during and after training: its questions embedded, the bi-encoder's scores on it (pairs,
mining, retrieval), and the evaluator that selects the best checkpoint of either trainer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from dupfind.quality.training.splits import duplicate_clusters

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from dupfind.vectors.encoding import Embeddings


@dataclass(frozen=True)
class HoldoutScores:
    """Best-F1 thresholds and average precision on the held-out pairs and on their clusters (mining)."""

    pair_f1: float
    pair_threshold: float
    pair_ap: float
    mining_f1: float
    mining_threshold: float
    mining_ap: float
    retrieval_ndcg: float  # ndcg@10 of each held-out question retrieving the others (itself excluded)


@dataclass(frozen=True)
class HeldOut:
    """The held-out pairs' questions (sorted) embedded by a bi-encoder, each pair's cosine and label, and each
    question's cluster: the connected components of the duplicate pairs (the mining gold)."""

    texts: list[str]
    embeddings: Embeddings
    cosines: NDArray[np.float32]
    labels: NDArray[np.bool_]
    clusters: NDArray[np.int64]


def embed_holdout(holdout: pd.DataFrame, embed: Callable[[list[str]], Embeddings]) -> HeldOut:
    """The held-out pairs (`sentence1, sentence2, label`) seen through the embeddings `embed` gives their texts."""
    from dupfind.vectors.encoding import cosines

    texts = sorted(set(holdout["sentence1"]) | set(holdout["sentence2"]))
    position = {text: row for row, text in enumerate(texts)}
    embeddings = embed(texts)
    left = embeddings[holdout["sentence1"].map(position).to_numpy()]
    right = embeddings[holdout["sentence2"].map(position).to_numpy()]
    duplicates = holdout[holdout["label"] == 1]
    clusters = duplicate_clusters(texts, duplicates["sentence1"].tolist(), duplicates["sentence2"].tolist())
    labels = holdout["label"].to_numpy().astype(bool)
    return HeldOut(texts, embeddings, cosines(left, right), labels, clusters)


def evaluate_holdout(model: SentenceTransformer, holdout: pd.DataFrame, progress: bool = False) -> HoldoutScores:
    """Pair and mining scores on held-out pairs; mining gold = pairs inside one component of duplicate edges."""
    from dupfind.quality.evaluation.mining import MINING_TOP_K, rank_candidates
    from dupfind.quality.evaluation.pairs import evaluate_pairs
    from dupfind.quality.evaluation.retrieval import evaluate_retrieval

    held = embed_holdout(holdout, lambda texts: encode(model, texts, progress))
    pairs = evaluate_pairs(held.cosines, held.labels, threshold=0.5)
    mining = rank_candidates(held.embeddings, held.clusters, MINING_TOP_K)
    return HoldoutScores(
        pair_f1=pairs.best_f1.f1,
        pair_threshold=pairs.best_f1.threshold,
        pair_ap=pairs.average_precision,
        mining_f1=mining.best_f1.f1,
        mining_threshold=mining.best_f1.threshold,
        mining_ap=mining.average_precision,
        retrieval_ndcg=evaluate_retrieval(held.embeddings, held.clusters).metrics["ndcg@10"],
    )


def encode(model: SentenceTransformer, texts: list[str], progress: bool) -> NDArray[np.float32]:
    """L2-normalised float32 embeddings of texts with the model being trained."""
    embeddings = model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=progress)
    return np.asarray(embeddings, dtype=np.float32)


def holdout_score(model: SentenceTransformer, holdout: pd.DataFrame) -> dict[str, float]:
    """The bi-encoder's held-out figures as `holdout_*` metrics; `holdout_score`, which selects its checkpoint,
    is the mean of pair AP and mining AP."""
    scores = evaluate_holdout(model, holdout)
    metrics = {f"holdout_{key}": value for key, value in asdict(scores).items()}
    metrics["holdout_score"] = (scores.pair_ap + scores.mining_ap) / 2
    return metrics


def selection_evaluator(metric: str, measure: Callable[[Any], dict[str, float]]) -> Any:
    """A sentence-transformers evaluator for checkpoint selection: `measure(model)` gives the held-out metrics,
    of which `metric` (higher is better) chooses the best checkpoint."""
    from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

    class HoldoutEvaluator(SentenceEvaluator):
        def __init__(self) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.primary_metric = metric

        def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> Any:
            return measure(model)

    return HoldoutEvaluator()
