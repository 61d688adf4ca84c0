"""dupfind: find duplicate questions with sentence embeddings.

The library API, usable without the command line::

    from dupfind import Embedder, EmbeddingCache, load_encoder, load_questions, mine_texts
    questions = load_questions("questions.csv")
    embedder = Embedder(load_encoder(), EmbeddingCache())   # the built-in all-MiniLM-L6-v2, cached
    pairs = mine_texts(embedder, questions.texts, 0.8)  # a cosine threshold, or a Rule (dupfind.resolve_rule)
    print(pairs.to_frame(questions.ids, questions.texts))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.3.0"

_EXPORTS = {
    "DupfindError": "dupfind.errors",
    "Encoder": "dupfind.vectors.encoding",
    "Embedder": "dupfind.vectors.embedder",
    "EmbeddingCache": "dupfind.vectors.cache",
    "load_encoder": "dupfind.vectors.backends",
    "register_backend": "dupfind.vectors.backends",
    "load_pair_scorer": "dupfind.vectors.backends",
    "Reranker": "dupfind.pairs.rerank",
    "PairScorer": "dupfind.vectors.pair_scorer",
    "MinedPairs": "dupfind.pairs.mining",
    "mine_embeddings": "dupfind.pairs.mining",
    "mine_texts": "dupfind.pairs.mining",
    "AgainstPairs": "dupfind.pairs.corpus",
    "index_questions": "dupfind.pairs.corpus",
    "mine_against_corpus": "dupfind.pairs.corpus",
    "Questions": "dupfind.io.questions",
    "load_questions": "dupfind.io.questions",
    "QuestionReader": "dupfind.io.questions",
    "read_table": "dupfind.io.read",
    "write_table": "dupfind.io.write",
    "HtmlPage": "dupfind.io.html",
    "render_html": "dupfind.io.html",
    "Thresholds": "dupfind.thresholds",
    "load_thresholds": "dupfind.thresholds",
    "Rule": "dupfind.thresholds",
    "resolve_rule": "dupfind.thresholds",
    "search_corpus": "dupfind.pairs.corpus",
    "compare_questions": "dupfind.pairs.compare",
    "Comparison": "dupfind.pairs.compare",
    "resolve_model": "dupfind.vectors.model",
    "Clusters": "dupfind.pairs.clustering",
    "cluster_embeddings": "dupfind.pairs.clustering",
    "cluster_pairs": "dupfind.pairs.clustering",
    "cluster_texts": "dupfind.pairs.clustering",
    "Deduplicated": "dupfind.pairs.dedupe",
    "choose_kept": "dupfind.pairs.dedupe",
    "deduplicate": "dupfind.pairs.dedupe",
    "Index": "dupfind.pairs.index",
    "new_index": "dupfind.pairs.index",
    "open_index": "dupfind.pairs.index",
    "save_index": "dupfind.pairs.index",
    "Neighbours": "dupfind.pairs.search",
    "mine_against": "dupfind.pairs.search",
    "nearest": "dupfind.pairs.search",
}

if TYPE_CHECKING:
    from dupfind.errors import DupfindError
    from dupfind.io.html import HtmlPage, render_html
    from dupfind.io.questions import QuestionReader, Questions, load_questions
    from dupfind.io.read import read_table
    from dupfind.io.write import write_table
    from dupfind.pairs.clustering import Clusters, cluster_embeddings, cluster_pairs, cluster_texts
    from dupfind.pairs.compare import Comparison, compare_questions
    from dupfind.pairs.corpus import AgainstPairs, index_questions, mine_against_corpus, search_corpus
    from dupfind.pairs.dedupe import Deduplicated, choose_kept, deduplicate
    from dupfind.pairs.index import Index, new_index, open_index, save_index
    from dupfind.pairs.mining import MinedPairs, mine_embeddings, mine_texts
    from dupfind.pairs.rerank import Reranker
    from dupfind.pairs.search import Neighbours, mine_against, nearest
    from dupfind.thresholds import Rule, Thresholds, load_thresholds, resolve_rule
    from dupfind.vectors.backends import load_encoder, load_pair_scorer, register_backend
    from dupfind.vectors.cache import EmbeddingCache
    from dupfind.vectors.embedder import Embedder
    from dupfind.vectors.encoding import Encoder
    from dupfind.vectors.model import resolve_model
    from dupfind.vectors.pair_scorer import PairScorer


def __getattr__(name: str) -> Any:
    """Import the API lazily, so that `dupfind compare` starts fast."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dupfind' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
