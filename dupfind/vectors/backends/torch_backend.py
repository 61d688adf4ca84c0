"""The reference backend: sentence-transformers on torch: fp32 on the CPU, fp16 on a CUDA device."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.offline import downloads_allowed
from dupfind.vectors.backends.export import token_prefix
from dupfind.vectors.encoding import Embeddings
from dupfind.vectors.model import ModelRef, check_no_custom_code, fingerprint, model_dir

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder, SentenceTransformer

# Shipped models store their weights in fp16 to halve their size; they are always loaded as float32.
FLOAT32 = {"dtype": "float32"}


def _local_folder(ref: ModelRef) -> Path:
    """The model's folder, checked for code of its own, with the hub off unless downloads are allowed."""
    directory = model_dir(ref)
    check_no_custom_code(directory)
    if not downloads_allowed():
        os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    return directory


def load_sentence_transformer(ref: ModelRef, device: str | None = None) -> SentenceTransformer:
    """The model as a `SentenceTransformer`, loaded from its local directory without running any of its code."""
    directory = _local_folder(ref)
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(
            str(directory), device=device, trust_remote_code=False, local_files_only=True, model_kwargs=FLOAT32
        )
    except (OSError, ValueError) as exc:
        raise DupfindError(f"cannot load model '{ref.name}': {str(exc).splitlines()[0]}") from exc


def load_cross_encoder(ref: ModelRef, device: str | None = None) -> CrossEncoder:
    """The re-ranker as a sentence-transformers `CrossEncoder`, loaded as `load_sentence_transformer` loads."""
    directory = _local_folder(ref)
    from sentence_transformers import CrossEncoder

    try:
        model: CrossEncoder = CrossEncoder(
            str(directory), device=device, trust_remote_code=False, local_files_only=True, model_kwargs=FLOAT32
        )
        return model
    except (OSError, ValueError) as exc:
        raise DupfindError(f"cannot load re-ranker '{ref.name}': {str(exc).splitlines()[0]}") from exc


def torch_fingerprint(ref: ModelRef, device: str) -> str:
    """The fingerprint of a model's `TorchEncoder` on a device (`cpu` or `cuda`), known without loading it."""
    return f"{fingerprint(ref)}-torch" + ("-cuda-fp16" if device == "cuda" else "")


class TorchEncoder:
    """Encode with `SentenceTransformer.encode`, exactly as sentence-transformers does; in fp16 on `cuda`."""

    def __init__(self, ref: ModelRef, device: str = "cpu") -> None:
        self.model = load_sentence_transformer(ref, device)
        if device == "cuda":
            self.model.half()
        self.ref = ref
        self._fingerprint = torch_fingerprint(ref, device)

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length or 512)

    def encode_batch(self, texts: Sequence[str]) -> Embeddings:
        vectors = self.model.encode(
            self._prepare(texts), batch_size=len(texts), convert_to_numpy=True, normalize_embeddings=True
        )
        return np.asarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text, exact up to `max_seq_length`; a longer text may be counted on a prefix (still over)."""
        return [len(ids) for ids in self._tokenize(self._prepare(texts))]

    def _prepare(self, texts: Sequence[str]) -> list[str]:
        """The texts cut by `token_prefix`, so that a huge text is never tokenised whole."""
        return [token_prefix(text, self.max_seq_length, self._count) for text in texts]

    def _count(self, text: str) -> int:
        return len(self._tokenize([text])[0])

    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        ids: list[list[int]] = self.model.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
        return ids


class TorchPairScorer:
    """Score pairs with `CrossEncoder.predict` (a sigmoid over its one logit), exactly as sentence-transformers does."""

    def __init__(self, ref: ModelRef, device: str = "cpu") -> None:
        self.model = load_cross_encoder(ref, device)
        self.ref = ref
        self._fingerprint = f"{fingerprint(ref)}-torch"

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def score_batch(self, first: Sequence[str], second: Sequence[str]) -> NDArray[np.float32]:
        pairs = [(self._prefix(a), self._prefix(b)) for a, b in zip(first, second, strict=True)]
        scores = self.model.predict(pairs, batch_size=max(len(pairs), 1), convert_to_numpy=True)
        return np.asarray(scores, dtype=np.float32).reshape(len(pairs))

    def count_tokens(self, first: Sequence[str], second: Sequence[str]) -> list[int]:
        texts = [self._prefix(a) for a in first], [self._prefix(b) for b in second]
        ids: list[list[int]] = self.model.tokenizer(*texts, add_special_tokens=True, truncation=False)["input_ids"]
        return [len(row) for row in ids]

    def _prefix(self, text: str) -> str:
        return token_prefix(text, self.model.max_length, self._count)

    def _count(self, text: str) -> int:
        return len(self.model.tokenizer([text], add_special_tokens=True, truncation=False)["input_ids"][0])
