"""Measuring quality on labelled data, with the definitions of sentence-transformers' evaluators.

Pairs (`question1, question2, is_duplicate`) as `BinaryClassificationEvaluator`; clustered questions
(`question, cluster`) as `InformationRetrievalEvaluator` (each question retrieves the others, itself
excluded) and `ParaphraseMiningEvaluator` (ranked top-k candidates against every pair inside a cluster).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from dupfind.encoding import DEFAULT_BATCH_SIZE, Embeddings, Encoder, Progress, encode
from dupfind.errors import DupfindError
from dupfind.mining import MinedPairs, mine_embeddings
from dupfind.search import nearest

if TYPE_CHECKING:
    import pandas as pd

Scores = NDArray[np.float32]
Labels = NDArray[np.bool_]
PAIR_COLUMNS = ("question1", "question2", "is_duplicate")
CLUSTER_COLUMN = "cluster"
MINING_TOP_K = 20
RETRIEVAL_AT_K = (1, 3, 5, 10)
_RETRIEVAL_DEPTH = 100
_LABELS = {"0": False, "1": True, "0.0": False, "1.0": True, "false": False, "true": True}


@dataclass(frozen=True)
class LabelledPairs:
    """Question pairs with a duplicate label each; `skipped_blank` rows had a blank question."""

    first: list[str]
    second: list[str]
    labels: Labels
    skipped_blank: int = 0


@dataclass(frozen=True)
class Clustered:
    """Questions with the cluster each belongs to (as codes 0..c-1); duplicates share a cluster."""

    texts: list[str]
    clusters: NDArray[np.int64]
    skipped_blank: int = 0


@dataclass(frozen=True)
class Classification:
    """How well `score ≥ threshold` separates duplicates from the rest."""

    threshold: float
    accuracy: float
    f1: float
    precision: float
    recall: float


@dataclass(frozen=True)
class PairsReport:
    """Pair classification at the threshold in force, at the best-F1 and best-accuracy thresholds."""

    pairs: int
    duplicates: int
    at_threshold: Classification
    best_f1: Classification
    best_accuracy: Classification
    average_precision: float
    roc_auc: float


@dataclass(frozen=True)
class RetrievalReport:
    """Each question of a cluster of two or more retrieving the others; metrics named as sentence-transformers does."""

    questions: int
    queries: int
    metrics: dict[str, float]


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


# Reading labelled data


def pairs_from_frame(source: str, frame: pd.DataFrame, columns: Sequence[str] = PAIR_COLUMNS) -> LabelledPairs:
    """The labelled pairs of a table with two question columns and a 0/1 label column; blank pairs are skipped."""
    _require_columns(source, frame, columns)
    first_col, second_col, label_col = columns
    first, second = _texts(frame[first_col]), _texts(frame[second_col])
    keep = [i for i in range(len(frame)) if first[i].strip() and second[i].strip()]
    if not keep:
        raise DupfindError(f"{source}: no pair has two non-blank questions")
    labels = _labels(source, frame[label_col].tolist(), label_col, keep)
    if labels.all() or not labels.any():
        raise DupfindError(f"{source}: column '{label_col}' must hold both duplicates (1) and non-duplicates (0)")
    return LabelledPairs([first[i] for i in keep], [second[i] for i in keep], labels, len(frame) - len(keep))


def clusters_from_frame(
    source: str, frame: pd.DataFrame, text_col: str | None = None, cluster_col: str = CLUSTER_COLUMN
) -> Clustered:
    """The questions of a table with a cluster column; blank questions are skipped."""
    _require_columns(source, frame, [cluster_col])
    from dupfind.tables import pick_text_column

    texts = _texts(frame[pick_text_column(source, frame, text_col)])
    keep = [i for i, text in enumerate(texts) if text.strip()]
    if not keep:
        raise DupfindError(f"{source}: no non-blank questions")
    clusters = _texts(frame[cluster_col].iloc[keep])
    blank = next((keep[i] for i, cluster in enumerate(clusters) if not cluster.strip()), None)
    if blank is not None:
        raise DupfindError(f"{source}: row {blank + 1} has no '{cluster_col}'")
    import pandas as pd  # imported here: the CLI starts faster without pandas

    codes = pd.factorize(pd.Series(clusters))[0].astype(np.int64)
    if np.bincount(codes).max() < 2:
        raise DupfindError(f"{source}: no cluster holds two or more questions, so there are no duplicates to find")
    return Clustered([texts[i] for i in keep], codes, len(frame) - len(keep))


def _require_columns(source: str, frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        names = ", ".join(f"'{column}'" for column in missing)
        present = ", ".join(str(column) for column in frame.columns)
        raise DupfindError(f"{source}: no column {names} (columns: {present})")


def _texts(values: pd.Series) -> list[str]:
    return ["" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value) for value in values]


def _labels(source: str, values: list[object], column: str, rows: list[int]) -> Labels:
    labels = np.zeros(len(rows), dtype=np.bool_)
    for position, row in enumerate(rows):
        label = _LABELS.get(str(values[row]).strip().lower())
        if label is None:
            raise DupfindError(f"{source}: column '{column}' must hold 0 or 1; row {row + 1} has '{values[row]}'")
        labels[position] = label
    return labels


# Encoding


def encode_texts(
    encoder: Encoder, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE, progress: Progress | None = None
) -> Embeddings:
    """Encode each distinct text once; one L2-normalised row per text, in order."""
    index: dict[str, int] = {}
    rows = [index.setdefault(text, len(index)) for text in texts]
    return encode(encoder, list(index), batch_size, progress)[rows]


def pair_scores(
    encoder: Encoder, pairs: LabelledPairs, batch_size: int = DEFAULT_BATCH_SIZE, progress: Progress | None = None
) -> Scores:
    """The cosine score of each pair."""
    embeddings = encode_texts(encoder, pairs.first + pairs.second, batch_size, progress)
    return cosines(embeddings[: len(pairs.first)], embeddings[len(pairs.first) :])


def cosines(first: Embeddings, second: Embeddings) -> Scores:
    """Row-by-row cosine of two stacks of L2-normalised embeddings."""
    scores: Scores = np.einsum("ij,ij->i", first, second).astype(np.float32)
    return scores


# Pair classification


def classify(scores: Scores, labels: Labels, threshold: float) -> Classification:
    """Accuracy, F1, precision and recall of `score ≥ threshold`."""
    predicted = scores >= threshold
    true_pos = int(np.sum(predicted & labels))
    precision = true_pos / max(int(predicted.sum()), 1)
    recall = true_pos / max(int(labels.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if true_pos else 0.0
    accuracy = float(np.mean(predicted == labels))
    return Classification(float(threshold), accuracy, f1, precision, recall)


def evaluate_pairs(scores: Scores, labels: Labels, threshold: float) -> PairsReport:
    """Pair classification figures as `BinaryClassificationEvaluator` (cosine) computes them."""
    curve = _Curve.of(scores, labels, int(labels.sum()))
    return PairsReport(
        pairs=len(scores),
        duplicates=int(labels.sum()),
        at_threshold=classify(scores, labels, threshold),
        best_f1=classify(scores, labels, curve.best_f1()[0]),
        best_accuracy=classify(scores, labels, curve.best_accuracy(len(scores))),
        average_precision=curve.average_precision(),
        roc_auc=curve.roc_auc(len(scores)),
    )


def best_f1(scores: Scores, labels: Labels) -> Classification:
    """The pair classification at the threshold of best F1 (midway between two scores)."""
    return classify(scores, labels, _Curve.of(scores, labels, int(labels.sum())).best_f1()[0])


@dataclass(frozen=True)
class _Curve:
    """Positives found down a ranking, counted at the end of each group of equal scores (best first)."""

    scores: NDArray[np.float64]
    ends: NDArray[np.int64]
    found: NDArray[np.int64]
    total: int

    @classmethod
    def of(cls, scores: NDArray[np.floating], hits: Labels, total: int) -> _Curve:
        order = np.argsort(-scores, kind="stable")
        ranked = scores[order].astype(np.float64)
        ends = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])
        return cls(ranked, ends, np.cumsum(hits[order], dtype=np.int64)[ends], total)

    def cut(self, group: int) -> float:
        """The threshold that keeps groups up to `group`: midway to the next score."""
        end = self.ends[group]
        if end + 1 == len(self.scores):
            return float(self.scores[end])
        middle = float((self.scores[end] + self.scores[end + 1]) / 2)
        return middle if middle != self.scores[end + 1] else float(self.scores[end])

    def precision_recall(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        return self.found / (self.ends + 1), self.found / self.total

    def best_f1(self) -> tuple[float, float, float, float]:
        """Threshold, F1, precision and recall where F1 is highest (the highest such threshold)."""
        precision, recall = self.precision_recall()
        with np.errstate(invalid="ignore"):
            f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
        group = int(np.argmax(f1))
        return self.cut(group), float(f1[group]), float(precision[group]), float(recall[group])

    def best_accuracy(self, n: int) -> float:
        """The threshold of highest accuracy; above the best score when predicting no duplicate is best."""
        negatives = n - self.total
        accuracy = (self.found + negatives - (self.ends + 1 - self.found)) / n
        group = int(np.argmax(accuracy))
        if accuracy[group] <= negatives / n:
            return float(np.nextafter(np.float32(self.scores[0]), np.float32(np.inf)))
        return self.cut(group)

    def average_precision(self) -> float:
        """Sum of precision × recall gained at each group, over all positives (found or not)."""
        precision, _ = self.precision_recall()
        gained = np.diff(self.found, prepend=0)
        return float(np.sum(precision * gained) / self.total)

    def roc_auc(self, n: int) -> float:
        true_rate = np.r_[0, self.found] / self.total
        false_rate = np.r_[0, self.ends + 1 - self.found] / (n - self.total)
        return float(np.sum(np.diff(false_rate) * (true_rate[1:] + true_rate[:-1]) / 2))


# Retrieval and mining over clusters


def top_neighbours(
    embeddings: Embeddings, k: int, rows: NDArray[np.int64] | None = None
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """The `k` best other rows of each of `rows` (default all), best first (ties: lower row first).

    Scored block by block against all rows (never an n×n matrix); a row never retrieves itself.
    """
    queries = np.arange(len(embeddings)) if rows is None else rows
    found = nearest(embeddings if rows is None else embeddings[rows], embeddings, k, exclude=queries)
    return found.rows, found.scores


def evaluate_retrieval(embeddings: Embeddings, clusters: NDArray[np.int64]) -> RetrievalReport:
    """Each question of a cluster of two or more queries all others; as `InformationRetrievalEvaluator` (cosine)."""
    sizes = np.bincount(clusters)
    queries = np.flatnonzero(sizes[clusters] >= 2)
    if len(queries) == 0:
        raise DupfindError("no cluster holds two or more questions, so there is nothing to retrieve")
    hits, _ = top_neighbours(embeddings, _RETRIEVAL_DEPTH, queries)
    relevant = clusters[hits] == clusters[queries][:, None]
    wanted = sizes[clusters[queries]] - 1
    metrics: dict[str, float] = {}
    for k in RETRIEVAL_AT_K:
        metrics[f"accuracy@{k}"] = float(np.mean(relevant[:, :k].any(axis=1)))
    for k in RETRIEVAL_AT_K:
        metrics[f"precision@{k}"] = float(np.mean(relevant[:, :k].sum(axis=1) / k))
    for k in RETRIEVAL_AT_K:
        metrics[f"recall@{k}"] = float(np.mean(relevant[:, :k].sum(axis=1) / wanted))
    top10 = relevant[:, :10]
    discounts = 1 / np.log2(np.arange(2, 12))
    ideal = np.cumsum(discounts)[np.minimum(wanted, 10) - 1]
    metrics["ndcg@10"] = float(np.mean(top10 @ discounts[: top10.shape[1]] / ideal))
    first = np.argmax(top10, axis=1)
    metrics["mrr@10"] = float(np.mean(np.where(top10.any(axis=1), 1 / (first + 1), 0.0)))
    precision_at = np.cumsum(relevant, axis=1) / np.arange(1, relevant.shape[1] + 1)
    average = np.sum(precision_at * relevant, axis=1) / np.minimum(wanted, _RETRIEVAL_DEPTH)
    metrics[f"map@{_RETRIEVAL_DEPTH}"] = float(np.mean(average))
    return RetrievalReport(len(clusters), len(queries), metrics)


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


def rank_candidates(embeddings: Embeddings, clusters: NDArray[np.int64], top_k: int = MINING_TOP_K) -> MiningRanking:
    """Best F1 and AP of the top-k candidates against every pair inside a cluster, as `ParaphraseMiningEvaluator`."""
    sizes = np.bincount(clusters)
    gold = int(np.sum(sizes * (sizes - 1) // 2))
    if gold == 0:
        raise DupfindError("no cluster holds two or more questions, so there are no duplicates to find")
    candidates = candidate_pairs(embeddings, top_k)
    curve = _Curve.of(candidates.scores, clusters[candidates.left] == clusters[candidates.right], gold)
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
    correct = int(np.sum(clusters[mined.left] == clusters[mined.right]))
    precision = correct / max(len(mined), 1)
    recall = correct / gold
    f1 = 2 * precision * recall / (precision + recall) if correct else 0.0
    return MiningScores(float(threshold), len(mined), precision, recall, f1)


# Pictures


def histogram(scores: Scores, labels: Labels, threshold: float, bins: int = 20, width: int = 28) -> list[str]:
    """A text histogram of the scores of duplicates and non-duplicates, best first, with a line at the threshold."""
    low, high = min(float(scores.min()), threshold), max(float(scores.max()), threshold)
    step = (high - low) / bins or 1.0
    below = math.ceil((threshold - low) / step)
    count = below + max(1, math.ceil((high - threshold) / step))
    edges = threshold + step * np.arange(-below, count - below + 1)
    edges[below] = threshold
    duplicates = np.histogram(scores[labels], edges)[0]
    others = np.histogram(scores[~labels], edges)[0]
    scale = width / max(int(duplicates.max()), int(others.max()), 1)
    lines = [
        f"{edges[i]:6.3f}–{edges[i + 1]:6.3f}  {'█' * math.ceil(duplicates[i] * scale):<{width}} {duplicates[i]:>7}"
        f"  {'░' * math.ceil(others[i] * scale):<{width}} {others[i]:>7}"
        for i in reversed(range(count))
    ]
    lines.insert(count - below, f"{'':─>13}  threshold {threshold:.3f}: predicted duplicates above")
    return [f"{'score':>13}  {'duplicates':<{width}} {'':>7}  non-duplicates", *lines]


def check_plot_target(path: str) -> None:
    """Fail early when a plot cannot be written: matplotlib missing, or no such folder."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise DupfindError("--plot needs matplotlib: pip install matplotlib") from exc
    if not Path(path).expanduser().resolve().parent.is_dir():
        raise DupfindError(f"{path}: the folder {Path(path).parent} does not exist")


def plot_scores(scores: Scores, labels: Labels, threshold: float, path: str) -> None:
    """Write a picture of the score distributions of duplicates and non-duplicates, with the threshold."""
    check_plot_target(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5))
    edges = np.linspace(float(scores.min()), float(scores.max()), 61).tolist()
    axes.hist(scores[~labels], edges, alpha=0.6, label=f"not duplicate ({int((~labels).sum())})")
    axes.hist(scores[labels], edges, alpha=0.6, label=f"duplicate ({int(labels.sum())})")
    axes.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f}")
    axes.set_xlabel("cosine score")
    axes.set_ylabel("pairs")
    axes.legend()
    try:
        figure.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as exc:
        raise DupfindError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    finally:
        plt.close(figure)
