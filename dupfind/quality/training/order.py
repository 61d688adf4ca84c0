"""Generated order-sensitive pairs: a question and itself with two of its phrases swapped, labeled by the relation
between them. Around an asymmetric relation ("convert X to Y", "from X to Y", "Is X better than Y", "Why do X hate
Y") the swap asks another question (not a duplicate); around a symmetric one ("difference between X and Y",
"X vs Y", ", X or Y?") it asks the same (a duplicate). A bi-encoder cannot tell such pairs apart: the words are the
same. They are generated from the training questions, never taken from a published set."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

_PHRASE = r"(?:(?:a|an|the) )?[\w.+#'-]+(?: [\w.+#'-]+){0,2}?"  # an article and one to three words
_WORD = r"[\w.+#'-]+"
_BOUNDARY = "in|on|for|with|using|without|by|at|when|if|via|through|so|and|or|is|are|was|were|getting|be|has|have|can"
_END = rf"(?=\s*(?:[?,:;.!]|$| (?:{_BOUNDARY}|will|would|should)\b))"  # what may follow the second phrase
_COMPARATIVE = r"(?:better|worse|faster|slower|bigger|smaller|harder|easier|stronger|weaker|cheaper|safer|richer)"
_TRANSFER = r"(?:convert|converting|change|changing|translate|translating|transfer|transferring|move|moving|switch|"
_TRANSFER += r"switching|migrate|migrating|port|porting|cast|casting)"


@dataclass(frozen=True)
class SwapRule:
    """A phrase pattern with two named groups, `x` and `y`; swapping them keeps the meaning when `symmetric`."""

    name: str
    pattern: re.Pattern[str]
    symmetric: bool


RULES = (
    SwapRule("from X to Y", re.compile(rf"\bfrom (?P<x>{_PHRASE}) to (?P<y>{_PHRASE}){_END}", re.I), False),
    SwapRule(
        "convert X to Y", re.compile(rf"\b{_TRANSFER} (?P<x>{_PHRASE}) (?:to|into) (?P<y>{_PHRASE}){_END}", re.I), False
    ),
    SwapRule(
        "X better than Y",
        re.compile(rf"^(?:is|are|was|were) (?P<x>{_PHRASE}) {_COMPARATIVE} than (?P<y>{_PHRASE}){_END}", re.I),
        False,
    ),
    SwapRule(
        "why do X hate Y",
        re.compile(
            r"^(?:Why|How|When) (?:do|does|did) (?:the )?(?P<x>[A-Z][\w'-]+) [a-z]+ (?:the )?(?P<y>[A-Z][\w'-]+)\?$"
        ),
        False,
    ),
    SwapRule("between X and Y", re.compile(rf"\bbetween (?P<x>{_PHRASE}) and (?P<y>{_PHRASE}){_END}", re.I), True),
    SwapRule(
        "X vs Y",
        re.compile(rf"(?:^|[:,] )(?P<x>{_PHRASE}) (?:vs\.?|versus) (?P<y>{_PHRASE})(?=\s*(?:[?,:]|$))", re.I),
        True,
    ),
    SwapRule("X or Y", re.compile(rf"[:,] (?P<x>{_PHRASE}) or (?P<y>{_PHRASE})\s*\?$", re.I), True),
)
_CONNECTIVES = re.compile(r"\b(?:and|or|vs|versus|between|than|to|into|from)\b", re.I)
_MAX_WORDS = 4


def swapped(question: str) -> tuple[str, SwapRule] | None:
    """The question with the phrases of the first rule that matches swapped, and that rule; None when no rule
    matches cleanly (a phrase holding a connective or too long, or both phrases the same)."""
    for rule in RULES:
        match = rule.pattern.search(question)
        if match is None:
            continue
        x, y = match.group("x"), match.group("y")
        if x.lower() == y.lower() or any(_CONNECTIVES.search(p) or len(p.split()) > _MAX_WORDS for p in (x, y)):
            continue
        (xs, xe), (ys, ye) = match.span("x"), match.span("y")
        text = question[:xs] + y + question[xe:ys] + x + question[ye:]
        return _fix_articles(text), rule
    return None


def _fix_articles(text: str) -> str:
    """`a` before a vowel becomes `an`, `an` before a consonant `a` (the swap moves phrases away from their
    articles only when the article is outside them; inside, it travels with its phrase)."""

    def fix(match: re.Match[str]) -> str:
        article, word = match.group(1), match.group(2)
        wanted = "an" if word[0].lower() in "aeiou" else "a"
        if article.lower() == wanted:
            return match.group(0)
        return (wanted.capitalize() if article[0].isupper() else wanted) + " " + word

    return re.sub(r"\b(an?) ([A-Za-z]\w*)", fix, text)


def order_pairs(questions: Iterable[str]) -> pd.DataFrame:
    """The generated pairs of `questions` (each distinct question at most once): `sentence1` the question,
    `sentence2` it swapped, `label` 1 around a symmetric relation and 0 around an asymmetric one, `rule` its name."""
    rows = []
    for question in dict.fromkeys(questions):
        found = swapped(question)
        if found is not None and found[0] != question:
            rows.append((question, found[0], int(found[1].symmetric), found[1].name))
    return pd.DataFrame(rows, columns=["sentence1", "sentence2", "label", "rule"])
