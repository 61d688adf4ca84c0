"""Exporting a sentence-transformers model to ONNX (and OpenVINO IR) once, into the cache, and running it.

Bi-encoders made of a transformer, mean pooling and optional normalisation are supported, which is what the
built-in models are, and cross-encoders (one score per pair, the re-ranker). torch and transformers are
imported only while exporting.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.io.atomic import build_atomically
from dupfind.io.cache_dir import cache_dir
from dupfind.vectors.encoding import Embeddings, normalize
from dupfind.vectors.model import ModelRef, check_no_custom_code, fingerprint, model_dir

if TYPE_CHECKING:
    from tokenizers import Tokenizer

ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
POOLING_FILE = "pooling_config.json"
META_FILE = "dupfind_export.json"
OPENVINO_DIR = "openvino"
OPENVINO_XML = "model.xml"
OPENVINO_COMPILED_DIR = "openvino_compiled"
OUTPUT_NAME = "last_hidden_state"
LOGITS_NAME = "logits"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17
# Texts longer than max_seq_length × this many characters are cut before tokenising (`token_prefix`); a
# word piece of English averages about 4 characters.
CHARS_PER_TOKEN = 16
_WHITESPACE = (" ", "\t", "\n", "\r")

Features = dict[str, NDArray[np.int64]]
Runner = Callable[[Features], NDArray[np.float32]]  # runs a loaded model on a batch's features


@dataclass(frozen=True)
class ExportedModel:
    """A model exported into the cache: its folder, and what encoding with it needs to know."""

    path: Path
    model_fingerprint: str
    max_seq_length: int
    do_lower_case: bool
    input_names: tuple[str, ...]
    output_name: str = OUTPUT_NAME

    @property
    def onnx_file(self) -> Path:
        return self.path / ONNX_FILE


def ensure_exported(ref: ModelRef, pairs: bool = False) -> ExportedModel:
    """The model's ONNX export in `cache_dir()/models/<fingerprint>/`, exported first if it is not there yet.

    `pairs`: the model is a cross-encoder, exported with its one-score head (`logits`).
    """
    model_hash = fingerprint(ref)
    target = cache_dir() / "models" / model_hash
    if not (target / META_FILE).is_file():
        source = model_dir(ref)
        build_atomically(target, lambda folder: (export_pair_onnx if pairs else export_onnx)(source, folder))
    try:
        meta = json.loads((target / META_FILE).read_text(encoding="utf-8"))
        exported = ExportedModel(
            target,
            model_hash,
            int(meta["max_seq_length"]),
            bool(meta["do_lower_case"]),
            tuple(meta["input_names"]),
            str(meta.get("output_name", OUTPUT_NAME)),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise DupfindError(f"{target}: broken model export ({exc}); delete this folder to export again") from exc
    if (exported.output_name == LOGITS_NAME) != pairs:
        kind = "a cross-encoder (a re-ranker)" if exported.output_name == LOGITS_NAME else "a bi-encoder"
        raise DupfindError(f"model '{ref.name}' is {kind}, which cannot be used here")
    return exported


def ensure_openvino_ir(exported: ExportedModel) -> Path:
    """The OpenVINO IR (`model.xml`) converted from the ONNX export, converted first if it is not there yet."""
    target = exported.path / OPENVINO_DIR
    if not (target / OPENVINO_XML).is_file():
        build_atomically(target, lambda folder: _convert_to_openvino(exported.onnx_file, folder))
    return target / OPENVINO_XML


def export_onnx(model_dir: Path, out_dir: Path) -> None:
    """Export the transformer of a sentence-transformers model to `out_dir` with the legacy ONNX exporter."""
    check_no_custom_code(model_dir)  # before any of its files is read
    transformer_dir, pooling_config = _read_modules(model_dir)
    check_mean_pooling(pooling_config)
    (out_dir / POOLING_FILE).write_text(json.dumps(pooling_config, indent=2) + "\n", encoding="utf-8")
    _export_transformer(model_dir, transformer_dir, out_dir, OUTPUT_NAME)


def export_pair_onnx(model_dir: Path, out_dir: Path) -> None:
    """Export a sentence-transformers cross-encoder with one output (its logit per pair) to `out_dir`."""
    check_no_custom_code(model_dir)  # before any of its files is read
    config = _read_json(model_dir / "config.json")
    labels = config.get("num_labels", len(config.get("id2label", {}) or {"0": 0}))
    if not str(config.get("architectures", [""])[0]).endswith("ForSequenceClassification") or labels != 1:
        raise DupfindError(f"model '{model_dir}' is not a cross-encoder with one score per pair (a re-ranker)")
    _export_transformer(model_dir, model_dir, out_dir, LOGITS_NAME)


def _export_transformer(model_dir: Path, transformer_dir: Path, out_dir: Path, output_name: str) -> None:
    """Export the transformer (`last_hidden_state`) or the sequence classifier (`logits`) in float32."""
    if not (transformer_dir / TOKENIZER_FILE).is_file():
        raise DupfindError(f"model '{model_dir}' has no {TOKENIZER_FILE} (a fast tokenizer is needed)")
    max_seq_length, do_lower_case = _read_sbert_config(transformer_dir)

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification

    loader = AutoModel if output_name == OUTPUT_NAME else AutoModelForSequenceClassification
    model = loader.from_pretrained(  # float32 whatever the stored weights (shipped models store fp16)
        str(transformer_dir),
        attn_implementation="eager",
        local_files_only=True,
        trust_remote_code=False,
        dtype=torch.float32,
    )
    forward_parameters = inspect.signature(model.forward).parameters
    input_names = tuple(name for name in INPUT_NAMES if name in forward_parameters)

    class Output(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            result: torch.Tensor = getattr(self.model(**dict(zip(input_names, inputs, strict=True))), output_name)
            return result

    shutil.copyfile(transformer_dir / TOKENIZER_FILE, out_dir / TOKENIZER_FILE)
    tokenizer = load_tokenizer(out_dir / TOKENIZER_FILE, max_seq_length)
    example = tokenize(tokenizer, ["An example sentence to trace.", "Another one"], input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    axes[output_name] = {0: "batch", 1: "sequence"} if output_name == OUTPUT_NAME else {0: "batch"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings, about code paths BERT does not take
        torch.onnx.export(
            Output().eval(),
            tuple(torch.from_numpy(example[name]) for name in input_names),
            str(out_dir / ONNX_FILE),
            input_names=list(input_names),
            output_names=[output_name],
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    meta = {
        "max_seq_length": max_seq_length,
        "do_lower_case": do_lower_case,
        "input_names": list(input_names),
        "output_name": output_name,
    }
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def check_mean_pooling(config: dict[str, Any]) -> None:
    """Raise a `DupfindError` unless a sentence-transformers pooling config asks for mean pooling only."""
    modes = {key for key, value in config.items() if key.startswith("pooling_mode_") and value is True}
    named = config.get("pooling_mode")
    if named is not None:
        modes.add(f"pooling_mode_{named}_tokens" if named in ("mean", "max", "cls") else f"pooling_mode_{named}")
    if modes != {"pooling_mode_mean_tokens"}:
        found = ", ".join(sorted(modes)) or "none"
        raise DupfindError(
            f"the onnx and openvino backends support mean pooling only, this model uses: {found} (use --backend torch)"
        )


def load_tokenizer(file: Path, max_length: int | None) -> Tokenizer:
    """A tokenizer that pads each batch to its longest text and truncates at `max_length` (None: never).

    The tokenizer.json of sentence-transformers models may carry a fixed padding and truncation length of
    its own, which would change the results and waste compute: both are replaced here.
    """
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(file))
    padding = tokenizer.padding or {}
    tokenizer.no_padding()
    tokenizer.no_truncation()
    if max_length is not None:
        tokenizer.enable_truncation(max_length)
        tokenizer.enable_padding(
            pad_id=padding.get("pad_id", 0),
            pad_type_id=padding.get("pad_type_id", 0),
            pad_token=padding.get("pad_token", "[PAD]"),
        )
    return tokenizer


def tokenize(
    tokenizer: Tokenizer, texts: Sequence[str] | Sequence[tuple[str, str]], input_names: Sequence[str]
) -> Features:
    """The model inputs for a batch of texts (or of pairs of texts), padded to the longest of them."""
    encodings = tokenizer.encode_batch_fast(list(texts))  # no character offsets: ~25 % faster
    columns = {
        "input_ids": [encoding.ids for encoding in encodings],
        "attention_mask": [encoding.attention_mask for encoding in encodings],
        "token_type_ids": [encoding.type_ids for encoding in encodings],
    }
    return {name: np.array(columns[name], dtype=np.int64) for name in input_names}


def token_prefix(text: str, max_tokens: int, count: Callable[[str], int]) -> str:
    """A prefix of `text` of bounded length whose first `max_tokens` tokens are those of `text`.

    Tokenising a 10 MB text takes seconds and gigabytes, and all but its first `max_tokens` tokens are
    truncated. A text longer than `max_tokens × CHARS_PER_TOKEN` characters is cut at whitespace (which
    ends a word for every tokenizer), keeping the shortest such prefix (doubling its length) of more than
    `max_tokens` tokens by `count` (special tokens included), so truncation gives the same tokens as on
    the whole text and the count still says "over the limit"; the whole text if no prefix is long enough.
    """
    limit = max_tokens * CHARS_PER_TOKEN
    while limit < len(text):
        cut = max(text.rfind(space, 0, limit) for space in _WHITESPACE)
        if cut > 0 and count(text[:cut]) > max_tokens:
            return text[:cut]
        limit *= 2
    return text


def mean_pool(hidden: NDArray[np.float32], attention_mask: NDArray[np.int64]) -> NDArray[np.float32]:
    """The mean of the token embeddings of each text over its real (unpadded) tokens."""
    mask = attention_mask.astype(np.float32)
    summed = np.einsum("bsd,bs->bd", hidden, mask)
    counts = np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
    return np.asarray(summed / counts, dtype=np.float32)


class ExportedRuntime:
    """What an exported encoder and an exported pair scorer share: the export of `ref` (`pairs`: with the
    cross-encoder's logit head), its tokenizers, the runner at `precision` (loaded at the first batch: counting
    tokens and the fingerprint need only the export's files, so a Ray driver, which encodes nothing, never loads
    the runtime), the fingerprint, pickling by reloading from the cache."""

    backend: ClassVar[str]
    pairs: ClassVar[bool] = False

    def __init__(self, ref: ModelRef, precision: str = "fp32") -> None:
        self.ref = ref
        self.precision = precision
        self.exported = ensure_exported(ref, pairs=self.pairs)
        self._tokenizer = load_tokenizer(self.exported.path / TOKENIZER_FILE, self.exported.max_seq_length)
        self._untruncated: Tokenizer | None = None
        self._runner: Runner | None = None

    @property
    def fingerprint(self) -> str:
        """Model, backend and (unless fp32, whose outputs all backends share to ~1e-6) precision."""
        suffix = "" if self.precision == "fp32" else f"-{self.precision}"
        return f"{self.exported.model_fingerprint}-{self.backend}{suffix}"

    @property
    def max_seq_length(self) -> int:
        return self.exported.max_seq_length

    def _case(self, text: str) -> str:
        return text.lower() if self.exported.do_lower_case else text

    def _prefix(self, text: str) -> str:
        """The text as the tokenizer gets it: cut by `token_prefix`, lower-cased if the model says so."""
        return self._case(token_prefix(text, self.max_seq_length, self._count))

    def _count(self, text: str) -> int:
        return len(self._counter().encode_batch_fast([self._case(text)])[0].ids)

    def _counter(self) -> Tokenizer:
        """The tokenizer without truncation, loaded when first needed."""
        if self._untruncated is None:
            self._untruncated = load_tokenizer(self.exported.path / TOKENIZER_FILE, None)
        return self._untruncated

    def _run(self, features: Features) -> NDArray[np.float32]:
        """The model's output on a batch's features, its runtime loaded at the first batch."""
        if self._runner is None:
            self._runner = self._load_runner()
        return self._runner(features)

    def _load_runner(self) -> Runner:
        """Load the exported model with this backend's runtime (at `self.precision`)."""
        raise NotImplementedError

    def __reduce__(self) -> tuple[type[ExportedRuntime], tuple[ModelRef, str]]:
        return (type(self), (self.ref, self.precision))


class ExportedEncoder(ExportedRuntime):
    """Tokenise, run the exported transformer, mean-pool and L2-normalise, as sentence-transformers does, at
    `precision` (`fp32`; `bf16`; `int8`: the model quantised by `dupfind.vectors.backends.quantize`)."""

    def encode_batch(self, texts: Sequence[str]) -> Embeddings:
        if len(texts) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        features = tokenize(self._tokenizer, self._prepare(texts), self.exported.input_names)
        return normalize(mean_pool(self._run(features), features["attention_mask"]))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text, exact up to `max_seq_length`; a longer text may be counted on a prefix (still over)."""
        return [len(encoding.ids) for encoding in self._counter().encode_batch_fast(self._prepare(texts))]

    def _prepare(self, texts: Sequence[str]) -> list[str]:
        return [self._prefix(text) for text in texts]


class ExportedPairScorer(ExportedRuntime):
    """Tokenise each pair together (truncating the longer text first), run the exported cross-encoder at
    `precision` (`fp32` or `bf16`) and turn its logit into a probability, as sentence-transformers'
    `CrossEncoder.predict` does."""

    pairs = True

    def score_batch(self, first: Sequence[str], second: Sequence[str]) -> NDArray[np.float32]:
        if len(first) == 0:
            return np.zeros(0, dtype=np.float32)
        features = tokenize(self._tokenizer, self._prepare(first, second), self.exported.input_names)
        logits = self._run(features).reshape(len(first), -1)[:, 0].astype(np.float64)
        return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float32)

    def count_tokens(self, first: Sequence[str], second: Sequence[str]) -> list[int]:
        """Tokens of each pair as the model reads it, exact up to `max_seq_length`."""
        return [len(encoding.ids) for encoding in self._counter().encode_batch_fast(self._prepare(first, second))]

    def _prepare(self, first: Sequence[str], second: Sequence[str]) -> list[tuple[str, str]]:
        return [(self._prefix(a), self._prefix(b)) for a, b in zip(first, second, strict=True)]


def _read_modules(model_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The transformer's directory and the pooling config; a plain transformer gets mean pooling."""
    modules_file = model_dir / "modules.json"
    if not modules_file.is_file():
        return model_dir, {"pooling_mode_mean_tokens": True}
    transformer_dir: Path | None = None
    pooling: dict[str, Any] | None = None
    for module in json.loads(modules_file.read_text(encoding="utf-8")):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        folder = model_dir / module.get("path", "")
        if kind == "Transformer" and transformer_dir is None:
            transformer_dir = folder
        elif kind == "Pooling" and pooling is None:
            pooling = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        elif kind != "Normalize":
            raise DupfindError(f"the onnx and openvino backends do not support a '{kind}' module (use --backend torch)")
    if transformer_dir is None or pooling is None:
        raise DupfindError(
            f"model '{model_dir}' needs a Transformer and a Pooling module for the onnx/openvino backends"
        )
    return transformer_dir, pooling


def _read_sbert_config(transformer_dir: Path) -> tuple[int, bool]:
    """`max_seq_length` and `do_lower_case` as sentence-transformers would use them."""
    sbert = _read_json(transformer_dir / "sentence_bert_config.json")
    max_length = sbert.get("max_seq_length")
    if max_length is None:
        limits = [
            _read_json(transformer_dir / "config.json").get("max_position_embeddings"),
            _read_json(transformer_dir / "tokenizer_config.json").get("model_max_length"),
        ]
        max_length = min([int(limit) for limit in limits if isinstance(limit, (int, float))] or [512])
    return int(max_length), bool(sbert.get("do_lower_case", False))


def _read_json(file: Path) -> dict[str, Any]:
    if not file.is_file():
        return {}
    data = json.loads(file.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _convert_to_openvino(onnx_file: Path, out_dir: Path) -> None:
    import openvino as ov

    ov.save_model(ov.convert_model(onnx_file), out_dir / OPENVINO_XML, compress_to_fp16=False)
