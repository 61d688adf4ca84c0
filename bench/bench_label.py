"""`dupfind label` with an oracle labeler (answers from gold labels): F1 at the threshold it finds after 20, 40,
60 and 100 answers, against the best F1 over all labels and against a uniform random sample of as many pairs.

- questions: ../shared/data/quora/dev-questions.csv. The real command runs as a coprocess
  (`python -m dupfind label FILE --id-col id -o … --seed S --max 100 --width 0`), reading one JSON pair a line
  and answering y when both questions are in the same gold cluster. Its candidates (cosine ≥ 0.5, top-10 per
  question) are recomputed here the same way, to score each threshold on every candidate's gold label.
- pairs: ../shared/data/quora/dev-pairs.csv. The candidates are the labeled pairs themselves with their
  scores; the oracle answers `is_duplicate` through the labeling `Session` (no mining to do).

The random baseline labels a uniform sample and estimates the threshold the same way (`labeling.estimate`
with the rest of the candidates as the unlabeled population); "empirical" is the best-F1 threshold of the
sample alone (what `calibrate --pairs` would give). Embeddings: the built-in model (default backend) through
the embedding cache, so only the first run encodes (about 1–2 minutes per file on 2 cores).

    .venv/bin/python bench/bench_label.py [--seeds 10] [--datasets questions,pairs]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dupfind.io.questions import QuestionReader  # noqa: E402
from dupfind.pairs.mining import MinedPairs  # noqa: E402
from dupfind.quality.evaluation.pairs import best_f1, classify  # noqa: E402
from dupfind.quality.labeling import (  # noqa: E402
    DEFAULT_FLOOR,
    DEFAULT_WIDTH,
    Estimate,
    LabelRows,
    LabelsWriter,
    Prompt,
    Session,
    candidate_pairs,
    distinct_pairs,
    estimate,
    is_settled,
)

if TYPE_CHECKING:
    from dupfind.vectors.embedder import Embedder

DATA = ROOT.parent / "shared" / "data" / "quora"
RESULTS = ROOT / "bench" / "results" / "label.json"
CHECKPOINTS = (20, 40, 60, 100)
WIDTHS = (0.05, 0.075, 0.1)
Run = dict[int, dict[str, Any]]  # number of answers → the estimate reported then


def questions_candidates() -> tuple[np.ndarray, np.ndarray, list[tuple[Any, Any]], dict[Any, str]]:
    """The candidates `label` asks about in dev-questions.csv: scores, gold labels, id pairs, cluster of each id."""
    source = str(DATA / "dev-questions.csv")
    questions = QuestionReader(id_col="id").load(source)
    texts, ids = questions.texts, questions.ids
    mined = candidate_pairs(_embedder(), texts, DEFAULT_FLOOR, 10)
    chosen = distinct_pairs(texts, mined)
    frame = pd.read_csv(source)
    cluster = dict(zip(frame["id"], frame["cluster"], strict=True))
    pairs = [(ids[mined.left[p]], ids[mined.right[p]]) for p in chosen]
    gold = np.array([cluster[a] == cluster[b] for a, b in pairs])
    return mined.scores[chosen].astype(np.float64), gold, pairs, cluster


def run_coprocess(seed: int, cluster: dict[Any, str], answers: int, workdir: Path) -> Run:
    """The estimates `dupfind label` reports after each number of answers, answering as the gold clusters say."""
    labels = workdir / f"labels-{seed}.csv"
    labels.unlink(missing_ok=True)
    command = [sys.executable, "-m", "dupfind", "label", str(DATA / "dev-questions.csv"), "--id-col", "id"]
    command += ["-o", str(labels), "--seed", str(seed), "--max", str(answers), "--width", "0", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdin is not None and process.stdout is not None
    estimates: Run = {}
    for line in process.stdout:
        message = json.loads(line)
        found = message if message["type"] == "result" else message["estimate"]
        if found["threshold"] is not None:
            estimates[found["n"]] = found
        if message["type"] == "pair":
            process.stdin.write("y\n" if cluster[message["id_a"]] == cluster[message["id_b"]] else "n\n")
            process.stdin.flush()
    process.stdin.close()
    if process.wait() != 0:
        raise SystemExit(f"dupfind label exited with {process.returncode}")
    return estimates


def pairs_candidates() -> tuple[list[str], MinedPairs, np.ndarray]:
    """dev-pairs.csv as candidates: texts, the pairs (question1 row i with question2 row n+i), gold labels."""
    from dupfind.vectors.encoding import cosines

    frame = pd.read_csv(DATA / "dev-pairs.csv").dropna()
    texts = frame["question1"].astype(str).tolist() + frame["question2"].astype(str).tolist()
    embeddings = _embedder().embed(texts)
    n = len(frame)
    scores = cosines(embeddings[:n], embeddings[n:])
    mined = MinedPairs(np.arange(n), np.arange(n, 2 * n), scores)
    return texts, mined, frame["is_duplicate"].to_numpy().astype(bool)


def _embedder() -> Embedder:
    """The built-in model, through the embedding cache (as `dupfind label` encodes)."""
    from dupfind.vectors.backends import load_encoder
    from dupfind.vectors.cache import EmbeddingCache
    from dupfind.vectors.embedder import Embedder

    return Embedder(load_encoder(), EmbeddingCache())


class Oracle:
    """Answers from the gold labels, through the labeling `Session`; remembers the estimate after each answer."""

    def __init__(self, gold: dict[tuple[str, str], bool]) -> None:
        self.gold = gold
        self.estimates: Run = {}

    def ask(self, prompt: Prompt) -> str | None:
        if prompt.estimate.threshold == prompt.estimate.threshold:
            self.estimates[prompt.estimate.n] = prompt.estimate.as_dict()
        return "y" if self.gold[(prompt.question_a, prompt.question_b)] else "n"

    def hint(self, message: str) -> None:
        raise AssertionError(message)


def run_session(seed: int, texts: list[str], mined: MinedPairs, gold: np.ndarray, answers: int, workdir: Path) -> Run:
    """The estimates the labeling `Session` reports after each number of answers, answered from `gold`."""
    labels = workdir / f"pairs-{seed}.csv"
    labels.unlink(missing_ok=True)
    writer = LabelsWriter(labels)
    session = Session(texts, list(range(len(texts))), mined, LabelRows(), writer, seed, 0.0, answers)
    truth = {(texts[a], texts[b]): bool(g) for a, b, g in zip(mined.left, mined.right, gold, strict=True)}
    oracle = Oracle(truth)
    session.run(oracle)
    writer.close()
    final = session.sampler.estimate()
    oracle.estimates[final.n] = final.as_dict()
    return oracle.estimates


def random_estimates(seed: int, scores: np.ndarray, gold: np.ndarray) -> dict[str, Run]:
    """Estimates from uniform random samples (nested, one per checkpoint): as `label` estimates, and empirical."""
    order = np.random.default_rng(seed + 1000).permutation(len(scores))
    found: dict[str, Run] = {"random": {}, "random, empirical": {}}
    for n in CHECKPOINTS:
        sample, rest = order[:n], order[n:]
        labels = gold[sample]
        if labels.all() or not labels.any():
            continue
        rng = np.random.default_rng(seed)
        found["random"][n] = estimate(scores[sample], labels, rng, pool=scores[rest]).as_dict()
        found["random, empirical"][n] = {"threshold": best_f1(scores[sample].astype(np.float32), labels).threshold}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--datasets", default="questions,pairs")
    args = parser.parse_args()
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for dataset in args.datasets.split(","):
            if dataset == "questions":
                scores, gold, _, cluster = questions_candidates()
            else:
                texts, mined, pair_gold = pairs_candidates()
                chosen = distinct_pairs(texts, mined)
                scores = mined.scores[chosen].astype(np.float64)
                gold = pair_gold[chosen]
                mined = MinedPairs(mined.left[chosen], mined.right[chosen], mined.scores[chosen])
            best = best_f1(scores.astype(np.float32), gold)
            runs: dict[str, list[Run]] = {"label": [], "random": [], "random, empirical": []}
            for seed in range(args.seeds):
                if dataset == "questions":
                    runs["label"].append(run_coprocess(seed, cluster, max(CHECKPOINTS), workdir))
                else:
                    runs["label"].append(run_session(seed, texts, mined, gold, max(CHECKPOINTS), workdir))
                for name, found in random_estimates(seed, scores, gold).items():
                    runs[name].append(found)
                print(f"{dataset}: seed {seed} done", file=sys.stderr, flush=True)
            report[dataset] = summarize(dataset, scores, gold, best.f1, best.threshold, runs)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2), encoding="utf-8")


def summarize(
    dataset: str, scores: np.ndarray, gold: np.ndarray, best: float, at: float, runs: dict[str, list[Run]]
) -> dict[str, Any]:
    """Print the table of median F1 (and 10th percentile) at each checkpoint, how often the label run's intervals
    hold the truth, and where `--width` would have stopped it; return the figures."""
    print(f"\n{dataset}: {len(scores)} candidates, {int(gold.sum())} duplicates; best F1 {best:.3f} at {at:.3f}")
    print(f"| sampler | {' | '.join(f'F1 after {n} (p10)' for n in CHECKPOINTS)} |")
    print(f"|---|{'---:|' * len(CHECKPOINTS)}")
    table: dict[str, Any] = {"candidates": len(scores), "best_f1": best, "best_threshold": at}
    for name, found in runs.items():
        cells, figures = [], {}
        for n in CHECKPOINTS:
            f1s = [classify(scores, gold, run[n]["threshold"]).f1 if n in run else 0.0 for run in found]
            median, p10 = float(np.median(f1s)), float(np.percentile(f1s, 10))
            figures[n] = {"median_f1": median, "p10_f1": p10, "estimates": [run.get(n) for run in found]}
            cells.append(f"{median:.3f} ({p10:.3f})")
        print(f"| {name} | {' | '.join(cells)} |")
        table[name] = figures
    coverage = []
    for n in CHECKPOINTS:
        found = [run[n] for run in runs["label"] if n in run]
        f1_held = np.mean([e["f1_low"] <= classify(scores, gold, e["threshold"]).f1 <= e["f1_high"] for e in found])
        best_held = np.mean([e["low"] <= at <= e["high"] for e in found])
        width = np.median([e["high"] - e["low"] for e in found])
        coverage.append(f"{n}: width {width:.3f}, holds best threshold {best_held:.0%}, holds true F1 {f1_held:.0%}")
    print("label's 90% intervals (median width; share of seeds):", "; ".join(coverage))
    table["stops"] = {}
    for width in sorted({*WIDTHS, DEFAULT_WIDTH}):
        stops = [_stop(run, width) for run in runs["label"]]
        table["stops"][width] = stops
        stopped = [
            (n, classify(scores, gold, run[n]["threshold"]).f1)
            for n, run in zip(stops, runs["label"], strict=True)
            if n
        ]
        if stopped:
            answers, f1s = zip(*stopped, strict=True)
            name = f"--width {width}{' (default)' if width == DEFAULT_WIDTH else ''}"
            print(
                f"{name} stops {len(stopped)} of {len(stops)} runs by {max(CHECKPOINTS)} answers: "
                f"median {np.median(answers):.0f} answers, median F1 there {np.median(f1s):.3f}"
            )
    return table


def _stop(run: Run, width: float) -> int | None:
    """The number of answers at which `label --width` would have stopped this run (None: not by its end)."""
    for n in sorted(run):
        e = run[n]
        found = Estimate(*(e[k] for k in ("threshold", "low", "high", "f1", "f1_low", "f1_high", "n", "duplicates")))
        if is_settled(found, width):
            return n
    return None


if __name__ == "__main__":
    main()
