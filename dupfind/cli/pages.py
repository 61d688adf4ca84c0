"""What an HTML page of results (`-o report.html`) says at its top: the command, the model, its precision, the rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dupfind.cli.output import command_line

if TYPE_CHECKING:
    from dupfind.cli.model_options import EmbedderOptions
    from dupfind.io.html import HtmlPage
    from dupfind.thresholds import Rule


def page(
    embedding: EmbedderOptions,
    model: str,
    rule: Rule | None,
    candidates: int | None = None,
    facts: Sequence[tuple[str, str]] = (),
    **extra: Any,
) -> HtmlPage:
    """The page's facts (then `facts`), with the rule's thresholds marked on its score bars; `extra`: `HtmlPage`'s
    other fields."""
    from dupfind.io.html import HtmlPage

    told = [("command", command_line()), ("model", model), ("precision", embedding.precision)]
    if rule is not None:
        told += [("rule", rule.describe(candidates)), ("thresholds from", rule.source)]
    cosine, rerank = (None, None) if rule is None else (rule.cosine, rule.rerank)
    return HtmlPage(facts=[*told, *facts], cosine=cosine, rerank=rerank, **extra)
