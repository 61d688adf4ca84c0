"""dupfind: find duplicate questions with sentence embeddings.

The library API, usable without the command line::

    from dupfind import Embedder, EmbeddingCache, load_encoder, load_questions, mine_texts
    questions = load_questions("questions.csv")
    embedder = Embedder(load_encoder(), EmbeddingCache())   # the built-in all-MiniLM-L6-v2, cached
    pairs = mine_texts(embedder, questions.texts, threshold=0.8)
    print(pairs.to_frame(questions.ids, questions.texts))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.3.0"

_EXPORTS = {
    "DupfindError": "dupfind.errors",
    "Encoder": "dupfind.encoding",
    "Embedder": "dupfind.embedder",
    "EmbeddingCache": "dupfind.embedding_cache",
    "load_encoder": "dupfind.backends",
    "register_backend": "dupfind.backends",
    "load_reranker": "dupfind.backends",
    "Reranker": "dupfind.reranker",
    "PairScorer": "dupfind.reranker",
    "MinedPairs": "dupfind.mining",
    "mine_embeddings": "dupfind.mining",
    "mine_texts": "dupfind.mining",
    "AgainstPairs": "dupfind.corpus",
    "index_questions": "dupfind.corpus",
    "mine_against_corpus": "dupfind.corpus",
    "Questions": "dupfind.tables",
    "load_questions": "dupfind.tables",
    "QuestionReader": "dupfind.tables",
    "read_table": "dupfind.tables",
    "write_table": "dupfind.tables",
    "Thresholds": "dupfind.model",
    "load_thresholds": "dupfind.model",
    "resolve_model": "dupfind.model",
    "Clusters": "dupfind.clustering",
    "cluster_embeddings": "dupfind.clustering",
    "cluster_pairs": "dupfind.clustering",
    "cluster_texts": "dupfind.clustering",
    "Deduplicated": "dupfind.dedupe",
    "choose_kept": "dupfind.dedupe",
    "deduplicate": "dupfind.dedupe",
    "Index": "dupfind.index",
    "new_index": "dupfind.index",
    "open_index": "dupfind.index",
    "save_index": "dupfind.index",
    "Neighbours": "dupfind.search",
    "mine_against": "dupfind.search",
    "nearest": "dupfind.search",
}

if TYPE_CHECKING:
    from dupfind.backends import load_encoder, load_reranker, register_backend
    from dupfind.clustering import Clusters, cluster_embeddings, cluster_pairs, cluster_texts
    from dupfind.corpus import AgainstPairs, index_questions, mine_against_corpus
    from dupfind.dedupe import Deduplicated, choose_kept, deduplicate
    from dupfind.embedder import Embedder
    from dupfind.embedding_cache import EmbeddingCache
    from dupfind.encoding import Encoder
    from dupfind.errors import DupfindError
    from dupfind.index import Index, new_index, open_index, save_index
    from dupfind.mining import MinedPairs, mine_embeddings, mine_texts
    from dupfind.model import Thresholds, load_thresholds, resolve_model
    from dupfind.reranker import PairScorer, Reranker
    from dupfind.search import Neighbours, mine_against, nearest
    from dupfind.tables import QuestionReader, Questions, load_questions, read_table, write_table


def __getattr__(name: str) -> Any:
    """Import the API lazily, so that `dupfind compare` starts fast."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dupfind' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
