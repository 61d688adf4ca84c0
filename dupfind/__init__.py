"""dupfind: find duplicate questions with sentence embeddings.

The library API, usable without the command line::

    from dupfind import load_questions, load_encoder, mine_texts, pairs_frame
    questions = load_questions("questions.csv")
    encoder = load_encoder()                      # the built-in all-MiniLM-L6-v2
    pairs = mine_texts(encoder, questions.texts, threshold=0.8)
    print(pairs_frame(pairs, questions.ids, questions.texts))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "DupfindError": "dupfind.errors",
    "Encoder": "dupfind.encoding",
    "encode": "dupfind.encoding",
    "load_encoder": "dupfind.encoding",
    "similarity": "dupfind.encoding",
    "MinedPairs": "dupfind.mining",
    "mine_embeddings": "dupfind.mining",
    "mine_texts": "dupfind.mining",
    "pairs_frame": "dupfind.mining",
    "Questions": "dupfind.tables",
    "load_questions": "dupfind.tables",
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
    from dupfind.clustering import Clusters, cluster_embeddings, cluster_pairs, cluster_texts
    from dupfind.dedupe import Deduplicated, choose_kept, deduplicate
    from dupfind.encoding import Encoder, encode, load_encoder, similarity
    from dupfind.errors import DupfindError
    from dupfind.index import Index, new_index, open_index, save_index
    from dupfind.mining import MinedPairs, mine_embeddings, mine_texts, pairs_frame
    from dupfind.model import Thresholds, load_thresholds, resolve_model
    from dupfind.search import Neighbours, mine_against, nearest
    from dupfind.tables import Questions, load_questions, read_table, write_table


def __getattr__(name: str) -> Any:
    """Import the API lazily, so that `dupfind compare` starts fast."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dupfind' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
