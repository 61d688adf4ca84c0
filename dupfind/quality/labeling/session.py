"""The labeling loop: candidate pairs of a question file, each asked about once, the answers written to the labels
file at once and fed to the sampler, until the threshold's range is narrow enough."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dupfind.pairs.mining import DEFAULT_TOP_K
from dupfind.quality.labeling.estimate import Estimate, count, is_settled
from dupfind.quality.labeling.labels_file import LabelRows, LabelsWriter
from dupfind.quality.labeling.sampling import Sampler

if TYPE_CHECKING:
    from dupfind.pairs.mining import MinedPairs
    from dupfind.vectors.embedder import Embedder

DEFAULT_FLOOR = 0.5
ANSWERS = ("y", "n", "s", "u", "q")  # duplicate, not, skip, undo, quit


def candidate_pairs(
    embedder: Embedder, texts: list[str], floor: float = DEFAULT_FLOOR, top_k: int = DEFAULT_TOP_K
) -> MinedPairs:
    """The pairs of `texts` to label: those with cosine ≥ `floor` among each question's best `top_k`."""
    from dupfind.pairs.mining import mine_texts

    return mine_texts(embedder, texts, floor, top_k)


@dataclass(frozen=True)
class Prompt:
    """A pair to answer about, with the estimate so far."""

    number: int
    score: float
    id_a: Any
    question_a: str
    id_b: Any
    question_b: str
    estimate: Estimate
    more: int

    def as_dict(self) -> dict[str, object]:
        return {
            "type": "pair",
            "number": self.number,
            "score": round(self.score, 6),
            "id_a": _plain(self.id_a),
            "question_a": self.question_a,
            "id_b": _plain(self.id_b),
            "question_b": self.question_b,
            "estimate": {**self.estimate.as_dict(), "more": self.more},
        }


class Labeler(Protocol):
    """Who answers: `ask` returns one of `ANSWERS`, or None at the end of input; `hint` tells them something."""

    def ask(self, prompt: Prompt) -> str | None: ...

    def hint(self, message: str) -> None: ...


class Session:
    """Candidate pairs, the answers so far (in the sampler and the labels file), and the labeling loop."""

    def __init__(
        self,
        texts: list[str],
        ids: list[Any],
        mined: MinedPairs,
        existing: LabelRows,
        writer: LabelsWriter,
        seed: int,
        width: float,
        max_answers: int | None,
    ) -> None:
        self.texts, self.ids, self.writer = texts, ids, writer
        self.width, self.max_answers = width, max_answers
        chosen = distinct_pairs(texts, mined)
        self.left, self.right = mined.left[chosen], mined.right[chosen]
        self.sampler = Sampler(mined.scores[chosen], seed)
        pairs = zip(self.left.tolist(), self.right.tolist(), strict=True)
        index_of = {_key(texts[a], texts[b]): index for index, (a, b) in enumerate(pairs)}
        self.resumed = len(existing)
        for first, second, label, score in zip(
            existing.first, existing.second, existing.labels, existing.scores, strict=True
        ):
            index = index_of.get(_key(first, second))
            if index is None:
                self.sampler.add_outside(score, label)
                continue
            if index in self.sampler.answers:  # a pair labeled twice (a hand-edited file): the later answer holds
                self.sampler.remove(index)
            self.sampler.add(index, label)

    def run(self, labeler: Labeler) -> str:
        """Ask until the range is narrow, `max_answers`, no pair is left, q, or the end of input; returns which."""
        history: list[tuple[int, int | None]] = []  # this session's answers: (pair, file offset; None: skipped)
        pending: int | None = None
        while True:
            estimate = self.sampler.estimate()
            if self.max_answers is not None and estimate.n >= self.max_answers:
                return "max"
            if is_settled(estimate, self.width):
                return "narrow"
            index = pending if pending is not None else self.sampler.next()
            if index is None:
                return "no pair left"
            pending = index
            answer = labeler.ask(self.prompt(index, estimate))
            if answer is None:
                return "end of input"
            if answer == "q":
                return "quit"
            if answer == "u":
                if not history:
                    labeler.hint("nothing to undo in this session")
                    continue
                pending, offset = history.pop()
                if offset is None:
                    self.sampler.unskip(pending)
                else:
                    self.writer.truncate(offset)
                    self.sampler.remove(pending)
                continue
            if answer == "s":
                self.sampler.skip(index)
                history.append((index, None))
            else:
                a, b = int(self.left[index]), int(self.right[index])
                score = float(self.sampler.scores[index])
                history.append((index, self.writer.append(self.texts[a], self.texts[b], answer == "y", score)))
                self.sampler.add(index, answer == "y")
            pending = None

    def prompt(self, index: int, estimate: Estimate) -> Prompt:
        a, b = int(self.left[index]), int(self.right[index])
        more = estimate.more_needed(self.width) if self.width > 0 else 0
        score = float(self.sampler.scores[index])
        return Prompt(estimate.n + 1, score, self.ids[a], self.texts[a], self.ids[b], self.texts[b], estimate, more)


def distinct_pairs(texts: list[str], mined: MinedPairs) -> list[int]:
    """The positions in `mined` of the pairs to ask about: each pair of texts once, none of identical texts."""
    from dupfind.pairs.identical import normalize_text

    seen: dict[tuple[str, str], int] = {}
    for position, (a, b) in enumerate(zip(mined.left.tolist(), mined.right.tolist(), strict=True)):
        if normalize_text(texts[a]) != normalize_text(texts[b]):
            seen.setdefault(_key(texts[a], texts[b]), position)
    return list(seen.values())


def describe(estimate: Estimate, width: float, more: int) -> str:
    """The estimate in one line; `more`: about how many more answers would narrow its range to `width`."""
    counts = f"{count(estimate.n, 'answer')} ({count(estimate.duplicates, 'duplicate')})"
    if estimate.threshold != estimate.threshold:  # NaN: no estimate yet
        return f"{counts}: no threshold yet (it needs a duplicate and a non-duplicate)"
    line = (
        f"{counts}: threshold {estimate.threshold:.3f} (90% range {estimate.low:.3f}–{estimate.high:.3f}), "
        f"F1 {estimate.f1:.2f} ({estimate.f1_low:.2f}–{estimate.f1_high:.2f})"
    )
    if is_settled(estimate, width):
        line += "; the range is narrow"
    elif width > 0:
        line += f"; about {more} more to narrow the range to {width:.3f}"
    return line


def _key(first: str, second: str) -> tuple[str, str]:
    return (first, second) if first <= second else (second, first)


def _plain(value: Any) -> Any:
    """An id as JSON can hold it (numpy scalars as Python numbers)."""
    return value.item() if hasattr(value, "item") else value
