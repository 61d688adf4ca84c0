"""The reference backend: sentence-transformers on torch: fp32 on the CPU, fp16 on a CUDA device."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from dupfind.backends.export import token_prefix
from dupfind.encoding import Embeddings
from dupfind.errors import DupfindError
from dupfind.model import ModelRef, check_no_custom_code, downloads_allowed, fingerprint, model_dir

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def load_sentence_transformer(ref: ModelRef, device: str | None = None) -> SentenceTransformer:
    """The model as a `SentenceTransformer`, loaded from its local directory without running any of its code."""
    directory = model_dir(ref)
    check_no_custom_code(directory)
    if not downloads_allowed():
        os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(str(directory), device=device, trust_remote_code=False, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise DupfindError(f"cannot load model '{ref.name}': {str(exc).splitlines()[0]}") from exc


class TorchEncoder:
    """Encode with `SentenceTransformer.encode`, exactly as sentence-transformers does; in fp16 on `cuda`."""

    def __init__(self, ref: ModelRef, device: str = "cpu") -> None:
        self.model = load_sentence_transformer(ref, device)
        if device == "cuda":
            self.model.half()
        self.ref = ref
        self._fingerprint = f"{fingerprint(ref)}-torch" + ("-cuda-fp16" if device == "cuda" else "")

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
