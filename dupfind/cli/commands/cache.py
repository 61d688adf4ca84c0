"""`dupfind cache info|clear`: the embedding cache that `mine` reads and fills."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from dupfind.cli.app import command, command_group
from dupfind.cli.options import JsonOption, QuietOption, ReportFormatOption, report_format
from dupfind.cli.output import info

if TYPE_CHECKING:
    from dupfind.vectors.cache import EmbeddingCache

F = TypeVar("F", bound=Callable[..., Any])

cache_app = command_group(
    "cache",
    "The embedding cache (at $DUPFIND_CACHE_DIR/embeddings, else ~/.cache/dupfind/embeddings), and the re-rank "
    "scores beside it (rerank/).",
)


@command("info", cache_app)
def cache_info(
    output_format: ReportFormatOption = "table", quiet: QuietOption = False, as_json: JsonOption = False
) -> None:
    """Where the cache is, and the rows and bytes it holds per model (encoder fingerprint).

    Example: dupfind cache info
    """
    from dupfind.vectors.cache import EmbeddingCache
    from dupfind.vectors.pair_scorer import score_cache

    fmt = report_format(output_format, as_json)
    cache, scores = EmbeddingCache(), score_cache()
    usage = cache.usage()
    reranked = scores.usage()
    if fmt == "json":
        data = {"location": str(cache.root), "models": [asdict(model) for model in usage]}
        print(json.dumps({**data, "rerank_scores": [asdict(model) for model in reranked]}))
        return
    print(f"location: {cache.root}")
    if reranked:
        pairs = sum(model.rows for model in reranked)
        size = _megabytes(sum(model.size for model in reranked))
        print(f"re-rank scores: {pairs} pairs of {len(reranked)} re-rankers ({size}) in {scores.root}")
    if not usage:
        print("empty")
        return
    width = max(len("model"), *(len(model.fingerprint) for model in usage))
    print(f"{'model':<{width}}  {'rows':>10}  {'shards':>6}  {'size':>10}")
    for model in usage:
        print(f"{model.fingerprint:<{width}}  {model.rows:>10}  {model.shards:>6}  {_megabytes(model.size):>10}")


@command("clear", cache_app)
def cache_clear(
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Only this fingerprint (see `cache info`), or all fingerprints of this model."
        ),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Delete cached embeddings (and re-rank scores): all of them, or one model's embeddings.

    Example: dupfind cache clear --model base
    """
    from dupfind.vectors.cache import EmbeddingCache
    from dupfind.vectors.pair_scorer import score_cache

    cache = EmbeddingCache()
    fingerprints = None if model is None else _fingerprints(cache, model)
    removed = cache.clear(fingerprints)
    size = sum(usage.size for usage in removed)
    info(
        f"Removed {sum(usage.rows for usage in removed)} embeddings of {len(removed)} models ({_megabytes(size)})",
        quiet,
    )
    if model is None:
        scores = score_cache().clear()
        pairs, size = sum(usage.rows for usage in scores), sum(usage.size for usage in scores)
        info(f"Removed {pairs} re-rank scores of {len(scores)} re-rankers ({_megabytes(size)})", quiet)


def _fingerprints(cache: EmbeddingCache, model: str) -> list[str]:
    """The cached fingerprints that `--model` names: itself, or those of the model whatever the backend."""
    from dupfind.vectors.model import fingerprint, resolve_model

    cached = [usage.fingerprint for usage in cache.usage()]
    if model in cached:
        return [model]
    prefix = fingerprint(resolve_model(model))
    return [name for name in cached if name == prefix or name.startswith(f"{prefix}-")]


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
