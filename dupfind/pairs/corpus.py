"""A corpus to search and to mine against: an index file as stored, or a question file embedded now."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from dupfind.errors import DupfindError
from dupfind.io.questions import Questions
from dupfind.pairs.identical import unique_texts
from dupfind.pairs.index import Index, new_index
from dupfind.pairs.mining import DEFAULT_TOP_K, MinedPairs, check_top_k, decide, mine_grouped
from dupfind.pairs.search import DEFAULT_SEARCH_K, Neighbours, mine_against
from dupfind.thresholds import Rule
from dupfind.vectors.embedder import Embedder
from dupfind.vectors.model import ModelRef

if TYPE_CHECKING:
    from dupfind.pairs.rerank import Reranker


def index_questions(ref: ModelRef, embedder: Embedder, questions: Questions, precision: str = "fp32") -> Index:
    """An index of a file's questions, embedded by `embedder` (which must encode with the model `ref` at
    `precision`)."""
    return new_index(ref, questions.ids, questions.texts, embedder.embed(questions.texts), precision)


@dataclass(frozen=True)
class AgainstPairs:
    """Pairs of a new question with a corpus question (and, optionally, pairs among the new questions).

    Rows number the new questions first, then the corpus's: `pairs.right >= new` is a corpus row.
    """

    pairs: MinedPairs
    new: int

    @property
    def with_corpus(self) -> int:
        """How many pairs join a new question with a corpus question."""
        return int((self.pairs.right >= self.new).sum())

    @property
    def within(self) -> int:
        """How many pairs join two new questions."""
        return len(self.pairs) - self.with_corpus


def mine_against_corpus(
    embedder: Embedder,
    ids: Sequence[object],
    texts: Sequence[str],
    corpus: Index,
    rule: Rule | float,
    top_k: int = DEFAULT_TOP_K,
    also_within: bool = False,
    index: str = "auto",
    reranker: Reranker | None = None,
) -> AgainstPairs:
    """Pairs of a new question with a corpus question by a `Rule` (a float: a cosine threshold alone), each new
    question keeping its best `top_k`; with `also_within`, the pairs among the new questions too (as `mine_texts`
    finds them). When the rule re-ranks, `reranker` decides among the pairs mined at its cosine.

    A new question with the same id and the same text as a corpus question is that question, not a duplicate
    of it: they are never paired.
    """
    rule = Rule.of(rule)
    check_top_k(top_k)
    first, inverse = unique_texts(texts)
    distinct = embedder.embed([texts[row] for row in first])
    cross = mine_against(distinct[inverse], corpus.embeddings, rule.cosine, top_k + 1)
    cross = _without_themselves(cross, ids, texts, corpus, top_k)
    parts = [cross.shifted(len(texts))]
    if also_within:
        parts.append(mine_grouped(distinct, inverse, rule.cosine, top_k, index))
    pairs = decide(MinedPairs.concat(parts), [*texts, *corpus.texts], rule, reranker)
    return AgainstPairs(pairs, len(texts))


def search_corpus(
    embedder: Embedder,
    corpus: Index,
    queries: Sequence[str],
    rule: Rule | float,
    top_k: int = DEFAULT_SEARCH_K,
    reranker: Reranker | None = None,
) -> Neighbours:
    """The `top_k` corpus questions nearest to each query, carrying the `Rule` that tells which are duplicates
    (a float: a cosine threshold alone); when the rule re-ranks, `reranker` scores each hit and orders them."""
    rule = Rule.of(rule)
    found = corpus.search(embedder.embed(list(queries)), top_k)
    if rule.reranks:
        if reranker is None:
            raise DupfindError(f"hits are duplicates by {rule.describe()}: that needs a re-ranker")
        found = reranker.rerank_neighbours(found, queries, corpus.texts)
    return replace(found, rule=rule)


def _without_themselves(
    cross: MinedPairs, ids: Sequence[object], texts: Sequence[str], corpus: Index, top_k: int
) -> MinedPairs:
    """Drop the pairs of a question with itself in the corpus (same id and text), then keep `top_k` per query.

    `cross` was mined with `top_k + 1` per query, so a query that meets itself still keeps `top_k` others.
    """
    same = np.fromiter(
        (
            str(ids[q]) == str(corpus.ids[c]) and texts[q] == corpus.texts[c]
            for q, c in zip(cross.left.tolist(), cross.right.tolist(), strict=True)
        ),
        dtype=bool,
        count=len(cross),
    )
    left, right, scores = cross.left[~same], cross.right[~same], cross.scores[~same]
    order = np.lexsort((right, -scores, left))  # per query, best first
    left, right, scores = left[order], right[order], scores[order]
    starts = np.r_[0, np.flatnonzero(np.diff(left)) + 1] if len(left) else np.zeros(0, dtype=np.int64)
    rank = np.arange(len(left)) - np.repeat(starts, np.diff(np.r_[starts, len(left)]))
    over = np.unique(left[rank >= top_k])
    keep = rank < top_k
    return MinedPairs(left[keep], right[keep], scores[keep], len(over)).sorted()
