"""Which thresholds are in force: a model's calibrated ones, a project file's, an index's and a re-ranker's.

A model's thresholds live in `dupfind.json` beside its weights (one section per precision); a project may
override them per model in `dupfind.toml`; a re-ranker stores its own thresholds and the cosine from which each
bi-encoder proposes candidates to it. `resolve_rule` combines them, once the model is known, into the `Rule`
that every pipeline takes: the cosine a pair needs, and with a re-ranker the re-rank score it needs too.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.io.atomic import write_bytes_durably
from dupfind.vectors.model import THRESHOLDS_FILE, ModelRef, _json_object, fingerprint, model_dir

PROJECT_FILE = "dupfind.toml"
Kind = Literal["pair", "mining"]  # deciding one pair, or mining a corpus (each has its own calibrated thresholds)


# Best-F1 thresholds of the built-in model (torch backend), measured on ../shared/data/quora/train-* (never dev)
# with `dupfind calibrate --pairs train-pairs.csv --questions train-questions.csv --dry-run`: pair 0.7437
# (F1 0.735 on 40,621 pairs), mining 0.8056 over top-20 candidates (F1 0.447 on 68,926 questions).
BUILTIN_PAIR_THRESHOLD = 0.744
BUILTIN_MINING_THRESHOLD = 0.806
PRECISION_SECTIONS = ("bf16", "int8")  # sections of dupfind.json holding the thresholds of another precision


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds of a model: one for deciding a single pair, one for mining a corpus."""

    pair: float
    mining: float

    def of(self, kind: Kind) -> float:
        return self.pair if kind == "pair" else self.mining


# int8 has not been calibrated on the whole of train-* yet, so it takes the fp32 values; on the first 5,000
# train pairs and questions its best-F1 thresholds were -0.010 (pair) and +0.003 (mining) away from fp32's
# (bench/bench_precision.py): `dupfind calibrate --precision int8` stores thresholds of its own. bf16 shares
# fp32's: with the default model on the first 10,000 train pairs and questions, its best-F1 thresholds were
# -0.0008 (pair) and -0.0000 (mining) away from fp32's, within 0.002 (`bench/bench_precision.py --candidate bf16
# --split train --limit 10000 --train-limit 10000`); a model's dupfind.json without a bf16 section gives its fp32 ones.
BUILTIN_THRESHOLDS = {
    "fp32": Thresholds(BUILTIN_PAIR_THRESHOLD, BUILTIN_MINING_THRESHOLD),
    "bf16": Thresholds(BUILTIN_PAIR_THRESHOLD, BUILTIN_MINING_THRESHOLD),
    "int8": Thresholds(BUILTIN_PAIR_THRESHOLD, BUILTIN_MINING_THRESHOLD),
}


def load_thresholds(ref: ModelRef, precision: str = "fp32") -> Thresholds:
    """The model's calibrated thresholds at a precision: `dupfind.json` beside its weights (the section of that
    precision when calibrated at it, else its fp32 thresholds), else the built-in defaults of that precision."""
    defaults = BUILTIN_THRESHOLDS.get(precision, BUILTIN_THRESHOLDS["fp32"])
    if ref.path is None:
        return defaults
    file = ref.path / THRESHOLDS_FILE
    if not file.is_file():
        return defaults
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        section = data if precision == "fp32" else data.get(precision, data)
        return Thresholds(float(section["pair_threshold"]), float(section["mining_threshold"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DupfindError(f"{file}: not a valid thresholds file ({exc})") from exc


def save_thresholds(
    model_dir: Path, thresholds: Thresholds, details: dict[str, object] | None = None, precision: str = "fp32"
) -> Path:
    """Store calibrated thresholds beside a model's weights, so `mine` and `compare` use them by default.

    fp32 thresholds are the file's top level; those of another precision its section of that name (the
    other precisions' thresholds are kept).
    """
    file = model_dir / THRESHOLDS_FILE
    data: dict[str, object] = {"pair_threshold": thresholds.pair, "mining_threshold": thresholds.mining}
    if details:
        data["calibration"] = details
    if precision != "fp32":
        data = {**_json_object(file), precision: data}
    else:
        data = {**{key: value for key, value in _json_object(file).items() if key in PRECISION_SECTIONS}, **data}
    write_bytes_durably(file, (json.dumps(data, indent=2) + "\n").encode("utf-8"))
    return file


def project_thresholds_file(path: str | None) -> Path | None:
    """The per-project thresholds file in force: `path` (`--thresholds FILE`), else `./dupfind.toml` if there."""
    if path is not None:
        return Path(path).expanduser()
    found = Path(PROJECT_FILE)
    return found if found.is_file() else None


def read_project_thresholds(file: Path, ref: ModelRef, precision: str = "fp32") -> Thresholds | None:
    """The thresholds a project file holds for this model (by content fingerprint) at a precision (its fp32 ones
    when it has none calibrated at that precision, as a model's own), or None. Only the model's own entry is
    checked: whatever else the file holds (dates, tables of its own) is left to it."""
    if not file.is_file():
        raise DupfindError(f"{file}: no such thresholds file")
    models = _project_models(file, _read_project_file(file)[1])
    key = _project_key(ref, precision)
    if key not in models:
        key = _project_key(ref, "fp32")
    if key not in models:
        return None
    entry = _project_table(file, models[key], _entry_name(key))
    return Thresholds(_threshold(file, entry, key, "pair"), _threshold(file, entry, key, "mining"))


def store_project_thresholds(file: Path, ref: ModelRef, thresholds: Thresholds, precision: str = "fp32") -> None:
    """Write this model's thresholds into a project file, atomically and keeping its mode, changing nothing else:
    its comments, keys, tables and their layout stay as they were (tomlkit edits the document in place)."""
    import tomllib

    from tomlkit.exceptions import TOMLKitError

    key = _project_key(ref, precision)
    values = {"name": ref.name, "pair": thresholds.pair, "mining": thresholds.mining}
    try:
        text, data = _read_project_file(file) if file.is_file() else (_PROJECT_FILE_HEADER, {})
        models = _project_models(file, data)
        entry = _project_table(file, models.get(key, {}), _entry_name(key))
    except DupfindError as exc:
        raise DupfindError(f"{exc}; not replaced") from exc
    try:
        edited = _with_entry(text, key, values)
    except TOMLKitError as exc:
        raise DupfindError(f"{file}: cannot edit {_entry_name(key)} ({exc}); not replaced") from exc
    expected = {**data, "models": {**models, key: {**entry, **values}}}
    if _comparable(tomllib.loads(edited)) != _comparable(expected):  # tomlkit misplaced it in an unusual layout
        raise DupfindError(
            f"{file}: cannot add {_entry_name(key)} without changing the rest of the file; not replaced: "
            "add that table with keys name, pair and mining, then run again"
        )
    if "\n" in text and text.count("\n") == text.count("\r\n"):  # a file of \r\n line ends keeps them
        edited = re.sub(r"(?<!\r)\n", "\r\n", edited)
    write_bytes_durably(file, edited.encode("utf-8"))


_PROJECT_FILE_HEADER = """\
# Decision thresholds per model (by content fingerprint), for the questions of this project.
# Written by `dupfind calibrate --thresholds`; read from the working directory or with --thresholds.
"""
_INVALID = "not a valid dupfind thresholds file"
_NAN = object()  # a nan read from a project file, as `_comparable` compares it


def _with_entry(text: str, key: str, values: dict[str, object]) -> str:
    """The TOML `text` with `values` set in the table `models.KEY` (added after the other models if new)."""
    import tomlkit
    from tomlkit.items import InlineTable, KeyType, SingleKey, Table

    document = tomlkit.parse(text)
    if "models" not in document:
        document["models"] = tomlkit.table(is_super_table=True)
    models: Any = document["models"]
    new = key not in models
    if new:
        models[SingleKey(key, KeyType.Basic)] = (
            tomlkit.inline_table() if isinstance(models, InlineTable) else tomlkit.table()
        )
    for name, value in values.items():
        if models[key].get(name) != value:  # an equal value keeps its spelling (0 stays 0, not 0.0)
            models[key][name] = value
    edited = tomlkit.dumps(document)
    if new and isinstance(models[key], Table) and not edited.endswith(models[key].as_string()):
        models[key].add(tomlkit.nl())  # a blank line between the new table and the one after it
        edited = tomlkit.dumps(document)
    return edited


def _read_project_file(file: Path) -> tuple[str, dict[str, Any]]:
    """A project file's text (as it is, line ends too) and its TOML data."""
    import tomllib

    try:
        text = file.read_bytes().decode("utf-8")
        return text, tomllib.loads(text)
    except OSError as exc:
        raise DupfindError(f"{file}: cannot read ({exc.strerror or exc})") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DupfindError(f"{file}: {_INVALID} ({str(exc).splitlines()[0]})") from exc


def _project_models(file: Path, data: dict[str, Any]) -> dict[str, Any]:
    return _project_table(file, data.get("models", {}), "models")


def _project_table(file: Path, value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DupfindError(f"{file}: {_INVALID}: {name} is {_describe(value)}, not a table")
    return value


def _threshold(file: Path, entry: dict[str, Any], key: str, kind: str) -> float:
    if kind not in entry:
        raise DupfindError(f"{file}: {_INVALID}: {_entry_name(key)} has no {kind} threshold")
    value = entry[kind]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1.0 <= value <= 1.0:  # nan too
        raise DupfindError(
            f"{file}: {_INVALID}: {_entry_name(key)}.{kind} is {_describe(value)}, not a number between -1 and 1"
        )
    return float(value)


def _entry_name(key: str) -> str:
    """A model's entry as TOML names it: `models."3f2a…"`."""
    return f"models.{json.dumps(key)}"


def _describe(value: object) -> str:
    """A TOML value in a few words, e.g. `a date (2026-01-01)`."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return f"a string ({json.dumps(value)})"
    for kind, name in ((datetime.datetime, "a date-time"), (datetime.date, "a date"), (datetime.time, "a time")):
        if isinstance(value, kind):
            return f"{name} ({value.isoformat()})"
    return "a table" if isinstance(value, dict) else "an array"


def _comparable(value: object) -> object:
    """TOML data in a form that compares equal to itself (a nan does not)."""
    if isinstance(value, dict):
        return {key: _comparable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    return _NAN if isinstance(value, float) and math.isnan(value) else value


def _project_key(ref: ModelRef, precision: str) -> str:
    """A model's entry in a project file: its content fingerprint, with the precision unless fp32."""
    return fingerprint(ref) if precision == "fp32" else f"{fingerprint(ref)}-{precision}"


RERANK_KEY = "rerank"
LOGIT_LIMIT = 16.0  # |logit| of a float32 probability next to 0 or 1; keeps the fused score finite


@dataclass(frozen=True)
class Fusion:
    """The re-rank score: a logistic model over both signals, sigmoid(cosine x bi-encoder cosine + logit x the
    cross-encoder's logit + bias), fitted on a held-out split. `IDENTITY` is the cross-encoder's probability alone."""

    cosine: float
    logit: float
    bias: float

    def score(self, cosines: NDArray[np.float32], probabilities: NDArray[np.float32]) -> NDArray[np.float32]:
        """The fused score (a probability) of pairs with these cosines and cross-encoder probabilities."""
        p = np.asarray(probabilities, dtype=np.float64)
        with np.errstate(divide="ignore"):
            logits = np.clip(np.log(p) - np.log1p(-p), -LOGIT_LIMIT, LOGIT_LIMIT)
        z = self.cosine * np.asarray(cosines, dtype=np.float64) + self.logit * logits + self.bias
        fused: NDArray[np.float32] = (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
        return fused


IDENTITY = Fusion(0.0, 1.0, 0.0)


@dataclass(frozen=True)
class RerankSettings:
    """What a re-ranker stores beside its weights (`dupfind.json`, key `rerank`).

    `thresholds`: its own score's best-F1 thresholds (pair, mining). `candidates`: the bi-encoder threshold of
    each bi-encoder it was calibrated with, by model fingerprint; `margin`: how far below a bi-encoder's own
    thresholds to propose candidates when it is not one of those; `fusion`: how its score combines the cosine and
    the cross-encoder's (a re-ranker trained before fusion, without the key, scores by the cross-encoder alone).
    """

    thresholds: Thresholds
    candidates: dict[str, Thresholds]
    margin: Thresholds
    fusion: Fusion = IDENTITY

    def candidates_for(self, model_fingerprint: str, own: Thresholds) -> Thresholds:
        """The candidate thresholds of a bi-encoder: calibrated if known, else its own thresholds less the margin."""
        if model_fingerprint in self.candidates:
            return self.candidates[model_fingerprint]
        return Thresholds(own.pair - self.margin.pair, own.mining - self.margin.mining)

    def to_json(self) -> dict[str, object]:
        return {
            "pair": self.thresholds.pair,
            "mining": self.thresholds.mining,
            "candidates": {key: vars(value) for key, value in self.candidates.items()},
            "margin": vars(self.margin),
            "fusion": vars(self.fusion),
        }

    @classmethod
    def from_json(cls, data: object, source: Path) -> RerankSettings:
        try:
            assert isinstance(data, dict)
            candidates = {
                str(key): Thresholds(float(value["pair"]), float(value["mining"]))
                for key, value in dict(data["candidates"]).items()
            }
            margin = Thresholds(float(data["margin"]["pair"]), float(data["margin"]["mining"]))
            fused = data.get("fusion", vars(IDENTITY))
            fusion = Fusion(float(fused["cosine"]), float(fused["logit"]), float(fused["bias"]))
            if not all(math.isfinite(value) for value in vars(fusion).values()):
                raise ValueError(f"fusion weights must be finite numbers, not {fused}")
            return cls(Thresholds(float(data["pair"]), float(data["mining"])), candidates, margin, fusion)
        except (AssertionError, KeyError, TypeError, ValueError) as exc:
            raise DupfindError(f"{source}: not a re-ranker's settings ({type(exc).__name__}: {exc})") from exc


def read_settings(ref: ModelRef) -> RerankSettings:
    """The re-ranker settings stored in a model's `dupfind.json`; a `DupfindError` if it is not a re-ranker."""
    file = model_dir(ref) / THRESHOLDS_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DupfindError(f"'{ref.name}' is not a dupfind re-ranker: cannot read {file} ({exc})") from exc
    if not isinstance(data, dict) or RERANK_KEY not in data:
        raise DupfindError(f"'{ref.name}' is not a dupfind re-ranker: {file} has no '{RERANK_KEY}' settings")
    return RerankSettings.from_json(data[RERANK_KEY], file)


def write_settings(directory: Path, settings: RerankSettings, details: dict[str, object]) -> None:
    """Store a re-ranker's settings and how they were found in `directory/dupfind.json`."""
    data = {RERANK_KEY: settings.to_json(), "calibration": details}
    (directory / THRESHOLDS_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class Rule:
    """When a pair is a duplicate: its cosine reaches `cosine`; with a re-ranker (`rerank` set), those pairs are
    only candidates, and a duplicate's re-rank score reaches `rerank` too.

    `source` says where the bi-encoder's thresholds came from (the model, an index or a project file).
    """

    cosine: float
    rerank: float | None = None
    source: str = "given"

    def __post_init__(self) -> None:
        if math.isnan(self.cosine) or not -1.0 <= self.cosine <= 1.0:
            raise DupfindError(f"a cosine threshold is between -1 and 1, not {self.cosine}")
        if self.rerank is not None and (math.isnan(self.rerank) or not 0.0 <= self.rerank <= 1.0):
            raise DupfindError(f"a re-rank threshold is a probability, between 0 and 1, not {self.rerank}")

    @classmethod
    def of(cls, rule: Rule | float) -> Rule:
        """A rule as given: a float is a cosine threshold alone."""
        return rule if isinstance(rule, Rule) else cls(float(rule))

    @property
    def reranks(self) -> bool:
        return self.rerank is not None

    def describe(self, candidates: int | None = None) -> str:
        """The rule in words, e.g. "cosine ≥ 0.842", or "re-rank score ≥ 0.500 among 12 candidates with cosine ≥
        0.700" (`candidates`: how many pairs the bi-encoder proposed, when known)."""
        cosine = f"cosine ≥ {self.cosine:.3f}"
        if self.rerank is None:
            return cosine
        among = "candidates" if candidates is None else f"{candidates} candidates"
        return f"re-rank score ≥ {self.rerank:.3f} among {among} with {cosine}"

    def is_duplicate(self, cosine: float, rerank: float | None = None) -> bool:
        """Whether a pair with this cosine (and re-rank score, when the rule re-ranks) is a duplicate."""
        if cosine < self.cosine:
            return False
        return self.rerank is None or (rerank is not None and rerank >= self.rerank)


def thresholds_in_force(
    ref: ModelRef, precision: str = "fp32", project_file: Path | None = None, fallback: Thresholds | None = None
) -> tuple[Thresholds, str]:
    """A bi-encoder's thresholds in force, and where they come from: the project file's when it has some for this
    model, else `fallback` (an index's, calibrated when it was built), else the model's own at this precision."""
    if project_file is not None:
        found = read_project_thresholds(project_file, ref, precision)
        if found is not None:
            return found, str(project_file)
    if fallback is not None:
        return fallback, "the index"
    return load_thresholds(ref, precision), f"model {ref.name}"


def resolve_rule(
    kind: Kind,
    model: ModelRef,
    *,
    precision: str = "fp32",
    project_file: Path | None = None,
    fallback: Thresholds | None = None,
    reranker: ModelRef | None = None,
    threshold: float | None = None,
) -> Rule:
    """The rule in force for the bi-encoder `model` (resolved once it is known: an index names its own), deciding
    one pair or mining (`kind`).

    `threshold`, when given, replaces the calibrated one that decides: the cosine, or with a re-ranker its score.
    With a re-ranker, the bi-encoder proposes candidates at the cosine the re-ranker stores for it.
    """
    own, source = thresholds_in_force(model, precision, project_file, fallback)
    if reranker is None:
        return Rule(own.of(kind) if threshold is None else threshold, source=source)
    settings = read_settings(reranker)
    candidates = settings.candidates_for(fingerprint(model), own)
    decide = settings.thresholds.of(kind) if threshold is None else threshold
    return Rule(candidates.of(kind), decide, source)
