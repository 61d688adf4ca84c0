"""Train `--recipe best` with sentence-transformers' `util.mine_hard_negatives` instead of dupfind's own miner.

Usage: python bench/hard_negative_miners.py -o DIR [--seed 42]

Everything else is `dupfind train --pairs ../shared/data/quora/train-pairs.csv`'s: the same recipe, split and
seed; only the hard negatives differ. sentence-transformers' miner is set up as dupfind's: the negative drawn
at random from the anchor's 10 nearest questions scoring at least 5 % below the positive (`relative_margin=0.05`,
`range_max=10`, `sampling_strategy="random"`), over every question of the training pairs; an anchor it finds
none for gets a random question, as dupfind's does. It knows neither the labeled non-duplicates (dupfind
prefers them) nor the clusters of duplicates (dupfind never draws a negative from the anchor's cluster). The
held-out scores it prints compare with the model card of a model trained by `dupfind train` (same split).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dupfind.quality.training.negatives import HARD_NEGATIVE_CHOICES, HARD_NEGATIVE_MARGIN  # noqa: E402
from dupfind.quality.training.recipes import get_recipe  # noqa: E402
from dupfind.quality.training.splits import read_pairs  # noqa: E402
from dupfind.quality.training.trainer import train  # noqa: E402

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DATA = ROOT.parent / "shared" / "data" / "quora"


def st_hard_negatives(
    pairs: pd.DataFrame,
    anchors: list[str],
    positives: list[str],
    model: SentenceTransformer,
    seed: int,
    progress: bool = False,
) -> list[str]:
    """A negative for each (anchor, positive), found by `sentence_transformers.util.mine_hard_negatives`."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    corpus = sorted(set(pairs["sentence1"]) | set(pairs["sentence2"]))
    mined = mine_hard_negatives(
        Dataset.from_dict({"anchor": anchors, "positive": positives}),
        model,
        corpus=corpus,
        range_max=HARD_NEGATIVE_CHOICES,
        relative_margin=HARD_NEGATIVE_MARGIN,
        sampling_strategy="random",
        num_negatives=1,
        output_format="triplet",
        batch_size=64,
        verbose=progress,
    )
    found = {(row["anchor"], row["positive"]): row["negative"] for row in mined}
    rng = np.random.default_rng(seed)
    pairs_asked = zip(anchors, positives, strict=True)
    return [found.get((a, p)) or corpus[int(rng.integers(len(corpus)))] for a, p in pairs_asked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", required=True, help="directory for the trained model")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    recipe = replace(get_recipe("best"), seed=args.seed)
    pairs = read_pairs(str(DATA / "train-pairs.csv"))
    result = train(
        pairs,
        Path(args.output),
        recipe,
        force=True,
        progress=False,
        log=lambda message: print(message, file=sys.stderr, flush=True),
        miner=st_hard_negatives,
    )
    scores = {"before": asdict(result.before), "after": asdict(result.after), "minutes": result.seconds / 60}
    print(json.dumps(scores, indent=1))


if __name__ == "__main__":
    main()
