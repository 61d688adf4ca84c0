"""Training the cross-encoder re-ranker from a built-in bi-encoder's transformer, and calibrating where it takes over.

The examples: the labeled pairs, positives by cluster (two questions of one gold cluster of `train-questions`),
hard negatives (a question's nearest neighbour by the bi-encoder outside its cluster) and generated order pairs
(`order`: a training question with two phrases swapped). A held-out split of the pairs (whole components, as
`dupfind train` carves it, so with the same seed neither model saw it) selects the checkpoint and calibrates: the
fusion of the cosine and the cross-encoder's logit (`fusion`), the fused score's best-F1 thresholds, and the
bi-encoder's candidate thresholds that keep >= 98 % of the held-out gold duplicates.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from dupfind.quality.evaluation.curve import Curve
from dupfind.quality.evaluation.mining import MINING_TOP_K, candidate_pairs, gold_pair_count
from dupfind.quality.training.card import ModelCard
from dupfind.quality.training.fitting import Log, fit, model_directory, training_arguments
from dupfind.quality.training.fusion import fit_fusion
from dupfind.quality.training.holdout import HeldOut, embed_holdout, selection_evaluator
from dupfind.quality.training.negatives import cluster_negatives
from dupfind.quality.training.order import order_pairs
from dupfind.quality.training.splits import DEFAULT_HOLDOUT, split_holdout
from dupfind.thresholds import Fusion, RerankSettings, Thresholds, write_settings
from dupfind.vectors.embedder import Embedder
from dupfind.vectors.model import BUILTIN_MODELS

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

# Share of the held-out gold duplicates the bi-encoder's candidates must keep: deciding single pairs costs one
# cross-encoder pass each, so nearly all (a duplicate left out costs its share of AP at the low-precision tail);
# mining scores every candidate of a corpus, so fewer.
PAIR_CANDIDATE_RECALL = 0.995
MINING_CANDIDATE_RECALL = 0.98


@dataclass(frozen=True)
class RerankerRecipe:
    """How to train the re-ranker: binary cross-entropy on (question, question, 0/1) from the transformer of the
    built-in bi-encoder `start` (a new one-logit head), at a constant learning rate after warm-up, until `minutes`
    have passed or the epochs are done, evaluated on the held-out split every `minutes / selection_evals` and at
    the end; the best checkpoint is kept."""

    start: str = "quora"
    order_pairs: bool = True  # add generated order pairs of the training questions
    positives_per_question: int = 1  # extra same-cluster partners of each clustered question
    negative_share: float = 0.5  # clustered questions given a bi-encoder near miss
    batch_size: int = 32
    epochs: float = 2.0
    minutes: float = 50.0  # training stops at the first step past this (its checkpoint evaluated too)
    learning_rate: float = 3e-5
    warmup_ratio: float = 0.02
    max_length: int = 128
    seed: int = 42
    selection_evals: int = 4


@dataclass(frozen=True)
class RerankerScores:
    """Held-out figures of the bi-encoder alone and with the re-ranker deciding among its candidates."""

    pair_f1: float
    pair_ap: float
    mining_f1: float
    mining_ap: float
    candidate_pair_recall: float
    candidate_mining_recall: float
    order_accuracy: float  # share of the held-out order pairs judged right (duplicate or not)
    candidates: int  # mining candidates the re-ranker scored


@dataclass(frozen=True)
class RerankerResult:
    output: Path
    settings: RerankSettings
    bi_encoder: RerankerScores
    reranked: RerankerScores
    examples: dict[str, int]
    holdout_pairs: int
    order_pairs: int  # generated from the held-out questions, to measure order_accuracy
    seconds: float

    @property
    def wins(self) -> bool:
        """Whether the fused score beats the cosine alone on the held-out split: pair AP and F1 both higher."""
        return self.reranked.pair_ap > self.bi_encoder.pair_ap and self.reranked.pair_f1 > self.bi_encoder.pair_f1


def training_examples(
    pairs: pd.DataFrame,
    questions: pd.DataFrame | None,
    embedder: Embedder,
    recipe: RerankerRecipe,
    excluded: set[str],
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The examples (`sentence1, sentence2, label`) and how many of each kind: the labeled pairs, then from
    `questions` (`question, cluster`; clusters holding an `excluded` question dropped) positives by cluster and
    hard negatives mined with `embedder`, then (`recipe.order_pairs`) the order pairs generated from all those
    questions. Each pair's order is drawn at random: the re-ranker reads either way."""
    rng = np.random.default_rng(recipe.seed)
    parts = [pairs[["sentence1", "sentence2", "label"]]]
    counts = {"labeled": len(pairs)}
    texts = [*pairs["sentence1"], *pairs["sentence2"]]
    if questions is not None:
        questions = _outside(questions, excluded)
        positives = _cluster_positives(questions, recipe.positives_per_question, rng, pairs)
        negatives = cluster_negatives(questions, embedder, recipe.negative_share, rng)
        parts += [positives, negatives]
        counts |= {"cluster positives": len(positives), "hard negatives": len(negatives)}
        texts += questions["question"].tolist()
    if recipe.order_pairs:
        generated = order_pairs(text for text in texts if text not in excluded)
        parts.append(generated[["sentence1", "sentence2", "label"]])
        counts["order pairs"] = len(generated)
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


def _outside(questions: pd.DataFrame, excluded: set[str]) -> pd.DataFrame:
    """The distinct `questions` of the clusters that hold none of `excluded`."""
    touching = questions.loc[questions["question"].isin(excluded), "cluster"].unique()
    return questions[~questions["cluster"].isin(touching)].drop_duplicates("question").reset_index(drop=True)


def holdout_order_pairs(held: pd.DataFrame, questions: pd.DataFrame | None) -> pd.DataFrame:
    """Order pairs generated from the held-out questions: those of the held-out pairs and of the clusters of
    `questions` that touch them (none of which is trained on)."""
    texts = [*held["sentence1"], *held["sentence2"]]
    if questions is not None:
        inside = set(texts)
        touching = questions.loc[questions["question"].isin(inside), "cluster"].unique()
        texts += questions.loc[questions["cluster"].isin(touching), "question"].tolist()
    return order_pairs(texts)


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
    examples: pd.DataFrame | None = None,
    precision: str = "auto",
) -> RerankerResult:
    """Train a re-ranker on labeled `pairs` (`sentence1, sentence2, label`) and optional clustered `questions`,
    calibrate it with `embedder` (the bi-encoder that proposes candidates) on a held-out split, and write it with
    its settings and model card to `output` (through a temporary directory beside it); `fp16`: store the weights in
    float16 (the calibration is of the float32 weights). `examples`: train on these instead of those the recipe
    makes (pilots). `precision`: as `trainer.train`'s."""
    started = time.monotonic()
    with model_directory(output, force, fp16) as tmp:
        train_pairs, held = split_holdout(pairs, holdout, recipe.seed)
        excluded = set(held["sentence1"]) | set(held["sentence2"])
        log(f"Training on {len(train_pairs)} pairs; {len(held)} held out (sharing no question) to select and calibrate")
        if examples is None:
            if questions is not None:
                log("Mining hard negatives with the bi-encoder")
            examples, counts = training_examples(train_pairs, questions, embedder, recipe, excluded)
        else:
            counts = {"given": len(examples)}
        log(f"{len(examples)} examples: " + ", ".join(f"{count} {kind}" for kind, count in counts.items()))
        space = embed_holdout(held, embedder.embed)
        order = holdout_order_pairs(held, questions)
        model = _fit(examples, held, space, tmp, recipe, progress, log, precision)
        model.save_pretrained(str(tmp), safe_serialization=True)
        settings, before, after = _calibrate(
            model, held, space, order, embedder, bi_encoder_fingerprint, bi_encoder_thresholds
        )
        log(_describe("Bi-encoder alone", before))
        log(_describe("Fused with the re-ranker", after))
        result = RerankerResult(tmp, settings, before, after, counts, len(held), len(order), time.monotonic() - started)
        if not result.wins:
            log("The fused score does not beat the cosine alone on the held-out split (pair AP and F1): do not ship it")
        write_settings(
            tmp,
            settings,
            {"source": "held-out split of the training pairs", "holdout_pairs": len(held), "wins": result.wins},
        )
        (tmp / "README.md").write_text(reranker_card(result, recipe), encoding="utf-8")
    return replace(result, output=output)


def time_budget(minutes: float, evaluations: int) -> Any:
    """A trainer callback that evaluates and saves a checkpoint at the first step past each `minutes / evaluations`
    of training, and stops it at the first step past `minutes` (after evaluating and saving that step's)."""
    from transformers.trainer_callback import TrainerCallback

    class TimeBudget(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            self.began, self.evaluated = time.monotonic(), 0

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            spent = (time.monotonic() - self.began) / 60
            if spent >= minutes * (self.evaluated + 1) / evaluations:
                self.evaluated += 1
                control.should_evaluate = control.should_save = True
                control.should_training_stop = spent >= minutes
            return control

    return TimeBudget()


def _fit(
    examples: pd.DataFrame,
    held: pd.DataFrame,
    space: HeldOut,
    tmp: Path,
    recipe: RerankerRecipe,
    progress: bool,
    log: Log,
    precision: str,
) -> CrossEncoder:
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    from dupfind.quality.training.batching import LengthGroupedBatchSampler

    torch.manual_seed(recipe.seed)
    start = BUILTIN_MODELS[recipe.start].directory()
    model: CrossEncoder = CrossEncoder(str(start), num_labels=1, max_length=recipe.max_length, local_files_only=True)
    steps = max(1, math.ceil(len(examples) / recipe.batch_size * recipe.epochs))
    candidate = _keeping(space.cosines[space.labels], PAIR_CANDIDATE_RECALL)
    began = time.monotonic()

    def holdout_ap(trained: Any) -> dict[str, float]:
        """Checkpoint selection: the average precision of the fused score on the held-out pairs."""
        scores = _predict(trained, held["sentence1"].tolist(), held["sentence2"].tolist())
        fused = _fused_pairs(space.cosines, scores, space.labels, candidate)[1]
        alone = Curve.of(scores, space.labels, int(space.labels.sum())).average_precision()
        minutes = (time.monotonic() - began) / 60
        log(f"  after {minutes:.1f} min: held-out AP fused {fused:.4f}, re-ranker alone {alone:.4f}")
        return {"holdout_ap": fused, "holdout_alone_ap": alone}

    trainer = CrossEncoderTrainer(
        model=model,
        args=CrossEncoderTrainingArguments(
            **training_arguments(recipe, tmp / "checkpoints", steps, "holdout_ap", progress, precision=precision)
            | {"eval_steps": steps, "save_steps": steps},
            lr_scheduler_type="constant_with_warmup",
            batch_sampler=LengthGroupedBatchSampler,
        ),
        train_dataset=Dataset.from_pandas(examples, preserve_index=False),
        loss=BinaryCrossEntropyLoss(model),
        evaluator=selection_evaluator("holdout_ap", holdout_ap),
        callbacks=[time_budget(recipe.minutes, recipe.selection_evals)],
    )
    fit(trainer, progress)
    return model


def _fused_pairs(
    cosine: NDArray[np.float32], probabilities: NDArray[np.float32], labels: NDArray[np.bool_], candidate: float
) -> tuple[Fusion, float, Curve]:
    """The fusion fitted on the held-out candidates (cosine >= `candidate`), its held-out pair AP and curve
    (a duplicate that is not a candidate counts as missed)."""
    proposed = cosine >= candidate
    fusion = fit_fusion(cosine[proposed], probabilities[proposed], labels[proposed])
    fused = np.where(proposed, fusion.score(cosine, probabilities), -1.0).astype(np.float32)
    curve = Curve.of(fused, labels & proposed, int(labels.sum()))
    return fusion, curve.average_precision(), curve


def _calibrate(
    model: CrossEncoder,
    held: pd.DataFrame,
    space: HeldOut,
    order: pd.DataFrame,
    embedder: Embedder,
    fingerprint: str,
    own: Thresholds,
) -> tuple[RerankSettings, RerankerScores, RerankerScores]:
    """The fusion, its thresholds and the bi-encoder's candidate thresholds, and the held-out figures."""
    cosine, labels, clusters = space.cosines, space.labels, space.clusters
    pair_candidate = _keeping(cosine[labels], PAIR_CANDIDATE_RECALL)
    reranked = _predict(model, held["sentence1"].tolist(), held["sentence2"].tolist())
    fusion, pair_ap, pair_curve = _fused_pairs(cosine, reranked, labels, pair_candidate)
    pair_threshold, pair_f1, _, _ = pair_curve.best_f1()
    bi_pair = Curve.of(cosine, labels, int(labels.sum()))

    gold = gold_pair_count(clusters)
    candidates = candidate_pairs(space.embeddings, MINING_TOP_K)
    hits = clusters[candidates.left] == clusters[candidates.right]
    mining_candidate = _keeping(candidates.scores[hits], MINING_CANDIDATE_RECALL)
    kept = candidates.scores >= mining_candidate
    mined_first = [space.texts[row] for row in candidates.left[kept].tolist()]
    mined_second = [space.texts[row] for row in candidates.right[kept].tolist()]
    mining_scores = fusion.score(candidates.scores[kept], _predict(model, mined_first, mined_second))
    mining_curve = Curve.of(mining_scores, hits[kept], gold)
    mining_threshold, mining_f1, _, _ = mining_curve.best_f1()
    bi_mining = Curve.of(candidates.scores, hits, gold)

    settings = RerankSettings(
        Thresholds(pair_threshold, mining_threshold),
        {fingerprint: Thresholds(pair_candidate, mining_candidate)},
        Thresholds(own.pair - pair_candidate, own.mining - mining_candidate),
        fusion,
    )
    order_cosine = _pair_cosines(embedder, order)
    order_labels = order["label"].to_numpy().astype(bool)
    order_fused = fusion.score(order_cosine, _predict(model, order["sentence1"].tolist(), order["sentence2"].tolist()))
    bi_order = order_cosine >= bi_pair.best_f1()[0]
    fused_order = (order_cosine >= pair_candidate) & (order_fused >= pair_threshold)
    before = RerankerScores(
        bi_pair.best_f1()[1],
        bi_pair.average_precision(),
        bi_mining.best_f1()[1],
        bi_mining.average_precision(),
        1.0,
        int(hits.sum()) / gold,
        float(np.mean(bi_order == order_labels)) if len(order) else math.nan,
        len(candidates),
    )
    after = RerankerScores(
        pair_f1,
        pair_ap,
        mining_f1,
        mining_curve.average_precision(),
        float(np.mean((cosine >= pair_candidate)[labels])),
        int(hits[kept].sum()) / gold,
        float(np.mean(fused_order == order_labels)) if len(order) else math.nan,
        int(kept.sum()),
    )
    return settings, before, after


def _pair_cosines(embedder: Embedder, pairs: pd.DataFrame) -> NDArray[np.float32]:
    from dupfind.vectors.encoding import cosines

    if not len(pairs):
        return np.zeros(0, dtype=np.float32)
    return cosines(embedder.embed(pairs["sentence1"].tolist()), embedder.embed(pairs["sentence2"].tolist()))


def _keeping(scores: NDArray[np.float32], share: float) -> float:
    """The highest threshold that keeps at least `share` of `scores` (scores >= threshold)."""
    ordered = np.sort(scores)[::-1]
    return float(ordered[max(0, math.ceil(share * len(ordered)) - 1)])


def _predict(model: CrossEncoder, first: list[str], second: list[str]) -> NDArray[np.float32]:
    """The model's probability for each pair, scored in batches of pairs of similar length (little padding)."""
    if not first:
        return np.zeros(0, dtype=np.float32)
    order = np.argsort([len(a) + len(b) for a, b in zip(first, second, strict=True)], kind="stable")
    pairs = [(first[i], second[i]) for i in order.tolist()]
    scores = np.empty(len(first), dtype=np.float32)
    scores[order] = np.asarray(model.predict(pairs, batch_size=64, convert_to_numpy=True), dtype=np.float32)
    return scores


def _describe(when: str, scores: RerankerScores) -> str:
    return (
        f"{when}: held-out pair F1 {scores.pair_f1:.3f}, AP {scores.pair_ap:.3f}; mining F1 {scores.mining_f1:.3f}, "
        f"AP {scores.mining_ap:.3f} (candidates keep {scores.candidate_pair_recall:.1%} of the duplicate pairs, "
        f"{scores.candidate_mining_recall:.1%} of the gold mining pairs; {scores.candidates} mining candidates); "
        f"order pairs judged right {scores.order_accuracy:.1%}"
    )


def reranker_card(result: RerankerResult, recipe: RerankerRecipe) -> str:
    """A README.md for the trained re-ranker: data, recipe, calibration and held-out figures."""
    before, after = asdict(result.bi_encoder), asdict(result.reranked)
    examples = ", ".join(f"{count} {kind}" for kind, count in result.examples.items())
    thresholds, fusion = result.settings.thresholds, result.settings.fusion
    return ModelCard(
        pipeline_tag="text-classification",
        kind_tag="cross-encoder",
        title="Duplicate-question re-ranker trained with `dupfind train-reranker`",
        about=f"""A cross-encoder (one logit per pair) trained from the transformer of dupfind's built-in \
`{recipe.start}` model with a
new one-logit head. dupfind's bi-encoder proposes candidate pairs, and the re-rank score decides:
sigmoid({fusion.cosine:.4f} x cosine + {fusion.logit:.4f} x this model's logit + {fusion.bias:.4f}), fitted on the
held-out split (`dupfind mine --rerank`, `dupfind compare --rerank`). `dupfind.json` holds that fusion, the fused
score's thresholds (pair {thresholds.pair:.4f}, mining {thresholds.mining:.4f}) and the candidate thresholds of the
bi-encoder it was calibrated with.""",
        data=f"""{examples} ({sum(result.examples.values())} examples); {result.holdout_pairs} labeled pairs held \
out (whole
components of the pair graph, and every cluster touching them dropped from the questions), which choose the
checkpoint and calibrate; {result.order_pairs} order pairs generated from the held-out questions measure
`order_accuracy`. Training and calibration took {result.seconds / 60:.1f} minutes.""",
        columns=("bi-encoder alone", "bi-encoder candidates, fused score"),
        figures=[(key, before[key], after[key]) for key in before if key != "candidates"],
        recipe="BinaryCrossEntropyLoss; the checkpoint of the best held-out fused pair AP is kept.",
        hyperparameters=asdict(recipe),
    ).render()
