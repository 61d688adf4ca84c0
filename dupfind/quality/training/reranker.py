"""Training the cross-encoder re-ranker from the built-in MiniLM weights, and calibrating where it takes over.

The examples: the labeled pairs, positives by cluster (two questions of one gold cluster of `train-questions`),
and hard negatives (a question's nearest neighbour by the bi-encoder outside its cluster). A held-out split of
the pairs (whole components, as `dupfind train` carves it, so with the same seed neither model saw it) selects
the checkpoint and calibrates: the re-ranker's best-F1 thresholds, and the bi-encoder's candidate thresholds
that keep >= 98 % of the held-out gold duplicates.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from dupfind.quality.evaluation.curve import Curve
from dupfind.quality.evaluation.mining import MINING_TOP_K, candidate_pairs, gold_pair_count
from dupfind.quality.training.card import ModelCard
from dupfind.quality.training.fitting import Log, fit, model_directory, training_arguments
from dupfind.quality.training.holdout import embed_holdout, selection_evaluator
from dupfind.quality.training.negatives import cluster_negatives
from dupfind.quality.training.splits import DEFAULT_HOLDOUT, split_holdout
from dupfind.thresholds import RerankSettings, Thresholds, write_settings
from dupfind.vectors.embedder import Embedder
from dupfind.vectors.model import builtin_model_dir

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

CANDIDATE_RECALL = 0.98  # share of the held-out gold duplicates the bi-encoder's candidates must keep


@dataclass(frozen=True)
class RerankerRecipe:
    """How to train the re-ranker: binary cross-entropy on (question, question, 0/1), one epoch, gently."""

    positives_per_question: int = 1  # extra same-cluster partners of each clustered question
    negative_share: float = 0.5  # clustered questions given a bi-encoder near miss (all: ~1 h to train on 2 cores)
    batch_size: int = 32
    epochs: float = 1.0
    learning_rate: float = 3e-5  # low, one epoch, best held-out checkpoint: stays close to the base's language
    warmup_ratio: float = 0.1
    max_length: int = 128
    seed: int = 42
    selection_evals: int = 3


@dataclass(frozen=True)
class RerankerScores:
    """Held-out figures of the bi-encoder alone and with the re-ranker deciding among its candidates."""

    pair_f1: float
    pair_ap: float
    mining_f1: float
    mining_ap: float
    candidate_pair_recall: float
    candidate_mining_recall: float
    candidates: int  # mining candidates the re-ranker scored


@dataclass(frozen=True)
class RerankerResult:
    output: Path
    settings: RerankSettings
    bi_encoder: RerankerScores
    reranked: RerankerScores
    examples: dict[str, int]
    holdout_pairs: int
    seconds: float


def training_examples(
    pairs: pd.DataFrame,
    questions: pd.DataFrame | None,
    embedder: Embedder,
    recipe: RerankerRecipe,
    excluded: set[str],
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The examples (`sentence1, sentence2, label`) and how many of each kind: the labeled pairs, then from
    `questions` (`question, cluster`; clusters holding an `excluded` question dropped) positives by cluster and
    hard negatives mined with `embedder`. Each pair's order is drawn at random: the re-ranker reads either way."""
    rng = np.random.default_rng(recipe.seed)
    parts = [pairs[["sentence1", "sentence2", "label"]]]
    counts = {"labeled": len(pairs)}
    if questions is not None:
        touching = questions.loc[questions["question"].isin(excluded), "cluster"].unique()
        questions = questions[~questions["cluster"].isin(touching)].drop_duplicates("question").reset_index(drop=True)
        positives = _cluster_positives(questions, recipe.positives_per_question, rng, pairs)
        negatives = cluster_negatives(questions, embedder, recipe.negative_share, rng)
        parts += [positives, negatives]
        counts |= {"cluster positives": len(positives), "hard negatives": len(negatives)}
    examples = pd.concat(parts, ignore_index=True)
    swap = rng.random(len(examples)) < 0.5
    first, second = examples["sentence1"].to_numpy(), examples["sentence2"].to_numpy()
    examples = pd.DataFrame(
        {
            "sentence1": np.where(swap, second, first),
            "sentence2": np.where(swap, first, second),
            "label": examples["label"].astype(float).to_numpy(),
        }
    )
    return examples.sample(frac=1.0, random_state=recipe.seed).reset_index(drop=True), counts


def _cluster_positives(
    questions: pd.DataFrame, per_question: int, rng: np.random.Generator, labeled: pd.DataFrame
) -> pd.DataFrame:
    """Up to `per_question` random partners of each question inside its cluster, none already a labeled pair."""
    seen = {frozenset(pair) for pair in zip(labeled["sentence1"], labeled["sentence2"], strict=True)}
    rows = []
    for texts in questions.groupby("cluster")["question"]:
        members = texts[1].tolist()
        if len(members) < 2:
            continue
        for i, text in enumerate(members):
            others = [j for j in rng.permutation(len(members)).tolist() if j != i][:per_question]
            for j in others:
                key = frozenset((text, members[j]))
                if key not in seen:
                    seen.add(key)
                    rows.append((text, members[j], 1))
    return pd.DataFrame(rows, columns=["sentence1", "sentence2", "label"])


def train_reranker(
    pairs: pd.DataFrame,
    questions: pd.DataFrame | None,
    output: Path,
    embedder: Embedder,
    bi_encoder_fingerprint: str,
    bi_encoder_thresholds: Thresholds,
    recipe: RerankerRecipe = RerankerRecipe(),
    holdout: float = DEFAULT_HOLDOUT,
    force: bool = False,
    progress: bool = True,
    log: Log = lambda message: None,
    fp16: bool = False,
    precision: str = "auto",
) -> RerankerResult:
    """Train a re-ranker from the built-in weights on labeled `pairs` (`sentence1, sentence2, label`) and optional
    clustered `questions`, calibrate it with `embedder` (the bi-encoder that proposes candidates) on a held-out
    split, and write it with its settings and model card to `output` (through `output.tmp`); `fp16`: store the
    weights in float16. The thresholds are calibrated on the float32 weights. `precision`: as `trainer.train`'s."""
    started = time.monotonic()
    with model_directory(output, force, fp16) as tmp:
        train_pairs, held = split_holdout(pairs, holdout, recipe.seed)
        excluded = set(held["sentence1"]) | set(held["sentence2"])
        log(f"Training on {len(train_pairs)} pairs; {len(held)} held out (sharing no question) to select and calibrate")
        if questions is not None:
            log("Mining hard negatives with the bi-encoder")
        examples, counts = training_examples(train_pairs, questions, embedder, recipe, excluded)
        log(f"{len(examples)} examples: " + ", ".join(f"{count} {kind}" for kind, count in counts.items()))
        model = _fit(examples, held, tmp, recipe, progress, precision)
        model.save_pretrained(str(tmp), safe_serialization=True)
        settings, before, after = _calibrate(model, held, embedder, bi_encoder_fingerprint, bi_encoder_thresholds)
        log(_describe("Bi-encoder alone", before))
        log(_describe("With the re-ranker", after))
        write_settings(tmp, settings, {"source": "held-out split of the training pairs", "holdout_pairs": len(held)})
        result = RerankerResult(tmp, settings, before, after, counts, len(held), time.monotonic() - started)
        (tmp / "README.md").write_text(reranker_card(result, recipe), encoding="utf-8")
    return RerankerResult(output, settings, before, after, counts, len(held), result.seconds)


def _fit(
    examples: pd.DataFrame, held: pd.DataFrame, tmp: Path, recipe: RerankerRecipe, progress: bool, precision: str
) -> CrossEncoder:
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    torch.manual_seed(recipe.seed)
    model: CrossEncoder = CrossEncoder(
        str(builtin_model_dir()), num_labels=1, max_length=recipe.max_length, local_files_only=True
    )
    steps = max(1, math.ceil(len(examples) / recipe.batch_size * recipe.epochs))
    pairs = list(zip(held["sentence1"], held["sentence2"], strict=True))
    labels = held["label"].to_numpy().astype(bool)

    def holdout_ap(trained: Any) -> dict[str, float]:
        """Checkpoint selection: the average precision of the re-ranker's scores on the held-out pairs."""
        scores = np.asarray(trained.predict(pairs, batch_size=64), dtype=np.float32)
        return {"holdout_ap": Curve.of(scores, labels, int(labels.sum())).average_precision()}

    trainer = CrossEncoderTrainer(
        model=model,
        args=CrossEncoderTrainingArguments(
            **training_arguments(recipe, tmp / "checkpoints", steps, "holdout_ap", progress, precision=precision)
        ),
        train_dataset=Dataset.from_pandas(examples, preserve_index=False),
        loss=BinaryCrossEntropyLoss(model),
        evaluator=selection_evaluator("holdout_ap", holdout_ap),
    )
    fit(trainer, progress)
    return model


def _calibrate(
    model: CrossEncoder, held: pd.DataFrame, embedder: Embedder, fingerprint: str, own: Thresholds
) -> tuple[RerankSettings, RerankerScores, RerankerScores]:
    """The re-ranker's thresholds and the bi-encoder's candidate thresholds, and the held-out figures."""
    space = embed_holdout(held, embedder.embed)
    cosine, labels, clusters = space.cosines, space.labels, space.clusters
    pair_candidate = _keeping(cosine[labels], CANDIDATE_RECALL)
    reranked = _predict(model, held["sentence1"].tolist(), held["sentence2"].tolist())
    proposed = cosine >= pair_candidate
    pair_curve = Curve.of(np.where(proposed, reranked, -1.0), labels & proposed, int(labels.sum()))
    pair_threshold, pair_f1, _, _ = pair_curve.best_f1()
    bi_pair = Curve.of(cosine, labels, int(labels.sum()))

    gold = gold_pair_count(clusters)
    candidates = candidate_pairs(space.embeddings, MINING_TOP_K)
    hits = clusters[candidates.left] == clusters[candidates.right]
    mining_candidate = _keeping(candidates.scores[hits], CANDIDATE_RECALL)
    kept = candidates.scores >= mining_candidate
    mined_first = [space.texts[row] for row in candidates.left[kept].tolist()]
    mined_second = [space.texts[row] for row in candidates.right[kept].tolist()]
    mining_scores = _predict(model, mined_first, mined_second)
    mining_curve = Curve.of(mining_scores, hits[kept], gold)
    mining_threshold, mining_f1, _, _ = mining_curve.best_f1()
    bi_mining = Curve.of(candidates.scores, hits, gold)

    settings = RerankSettings(
        Thresholds(pair_threshold, mining_threshold),
        {fingerprint: Thresholds(pair_candidate, mining_candidate)},
        Thresholds(own.pair - pair_candidate, own.mining - mining_candidate),
    )
    pair_recall = float(np.mean(proposed[labels]))
    mining_recall = int(hits[kept].sum()) / gold
    before = RerankerScores(
        bi_pair.best_f1()[1],
        bi_pair.average_precision(),
        bi_mining.best_f1()[1],
        bi_mining.average_precision(),
        1.0,
        int(hits.sum()) / gold,
        len(candidates),
    )
    after = RerankerScores(
        pair_f1,
        pair_curve.average_precision(),
        mining_f1,
        mining_curve.average_precision(),
        pair_recall,
        mining_recall,
        int(kept.sum()),
    )
    return settings, before, after


def _keeping(scores: NDArray[np.float32], share: float) -> float:
    """The highest threshold that keeps at least `share` of `scores` (scores >= threshold)."""
    ordered = np.sort(scores)[::-1]
    return float(ordered[max(0, math.ceil(share * len(ordered)) - 1)])


def _predict(model: CrossEncoder, first: list[str], second: list[str]) -> NDArray[np.float32]:
    if not first:
        return np.zeros(0, dtype=np.float32)
    scores = model.predict(list(zip(first, second, strict=True)), batch_size=64, convert_to_numpy=True)
    return np.asarray(scores, dtype=np.float32)


def _describe(when: str, scores: RerankerScores) -> str:
    return (
        f"{when}: held-out pair F1 {scores.pair_f1:.3f}, AP {scores.pair_ap:.3f}; mining F1 {scores.mining_f1:.3f}, "
        f"AP {scores.mining_ap:.3f} (candidates keep {scores.candidate_pair_recall:.1%} of the duplicate pairs, "
        f"{scores.candidate_mining_recall:.1%} of the gold mining pairs; {scores.candidates} mining candidates)"
    )


def reranker_card(result: RerankerResult, recipe: RerankerRecipe) -> str:
    """A README.md for the trained re-ranker: data, recipe, calibration and held-out figures."""
    before, after = asdict(result.bi_encoder), asdict(result.reranked)
    examples = ", ".join(f"{count} {kind}" for kind, count in result.examples.items())
    thresholds = result.settings.thresholds
    return ModelCard(
        pipeline_tag="text-classification",
        kind_tag="cross-encoder",
        title="Duplicate-question re-ranker trained with `dupfind train-reranker`",
        about=f"""A cross-encoder (one score per pair, sigmoid) trained from the built-in all-MiniLM-L6-v2 weights. \
dupfind's
bi-encoder proposes candidate pairs, this model decides: `dupfind mine --rerank`, `dupfind compare --rerank`.
`dupfind.json` holds its thresholds (pair {thresholds.pair:.4f}, mining {thresholds.mining:.4f}) and the
candidate thresholds of the bi-encoder it was calibrated with.""",
        data=f"""{examples} ({sum(result.examples.values())} examples); {result.holdout_pairs} labeled pairs held \
out (whole
components of the pair graph, and every cluster touching them dropped from the questions), which choose the
checkpoint and calibrate. Training took {result.seconds / 60:.1f} minutes.""",
        columns=("bi-encoder alone", "bi-encoder candidates, re-ranked"),
        figures=[(key, before[key], after[key]) for key in before if key != "candidates"],
        recipe=f"BinaryCrossEntropyLoss, the best of {recipe.selection_evals} held-out evaluations (pair AP) kept.",
        hyperparameters=asdict(recipe),
    ).render()
