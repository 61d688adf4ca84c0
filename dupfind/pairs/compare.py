"""Comparing two questions by a `Rule`: their cosine, their re-rank score when the rule re-ranks, the verdict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dupfind.errors import DupfindError
from dupfind.thresholds import Rule

if TYPE_CHECKING:
    from dupfind.pairs.rerank import Reranker
    from dupfind.vectors.embedder import Embedder


@dataclass(frozen=True)
class Comparison:
    """Two questions' scores and whether they are duplicates by the rule."""

    score: float
    rule: Rule
    rerank_score: float | None = None

    @property
    def duplicate(self) -> bool:
        return self.rule.is_duplicate(self.score, self.rerank_score)

    def to_json(self) -> dict[str, object]:
        """The scores, the thresholds and the verdict, as `compare --format json` prints them."""
        if self.rerank_score is None:
            return {"score": round(self.score, 6), "threshold": self.rule.cosine, "duplicate": self.duplicate}
        return {
            "score": round(self.score, 6),
            "rerank_score": round(self.rerank_score, 6),
            "candidate_threshold": self.rule.cosine,
            "threshold": self.rule.rerank,
            "duplicate": self.duplicate,
        }

    def describe(self) -> str:
        """One line: the scores, tab-separated, and the verdict with its thresholds."""
        verdict = "duplicate" if self.duplicate else "not duplicate"
        if self.rerank_score is None or self.rule.rerank is None:
            return f"{self.score:.4f}\t{verdict} (threshold {self.rule.cosine:.3f})"
        return (
            f"{self.score:.4f}\t{self.rerank_score:.4f}\t{verdict} (re-rank threshold {self.rule.rerank:.3f}, "
            f"candidate from cosine {self.rule.cosine:.3f})"
        )


def compare_questions(
    embedder: Embedder, first: str, second: str, rule: Rule | float, reranker: Reranker | None = None
) -> Comparison:
    """Score two questions and judge them by a `Rule` (a float: a cosine threshold alone); when the rule
    re-ranks, `reranker` scores the pair too."""
    rule = Rule.of(rule)
    score = embedder.similarity(first, second)
    if not rule.reranks:
        return Comparison(score, rule)
    if reranker is None:
        raise DupfindError(f"a pair is a duplicate by {rule.describe()}: that needs a re-ranker")
    return Comparison(score, rule, float(reranker.score([first], [second], np.array([score], np.float32))[0]))
