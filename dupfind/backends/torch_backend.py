"""The reference backend: sentence-transformers on torch (fp32)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from dupfind.encoding import Embeddings
from dupfind.errors import DupfindError
from dupfind.model import ModelRef, fingerprint


class TorchEncoder:
    """Encode with `SentenceTransformer.encode`, exactly as sentence-transformers does."""

    def __init__(self, ref: ModelRef, device: str | None = None) -> None:
        if ref.is_local:
            os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(
                str(ref.path or ref.name), device=device, trust_remote_code=False, local_files_only=ref.is_local
            )
        except (OSError, ValueError) as exc:
            raise DupfindError(f"cannot load model '{ref.name}': {str(exc).splitlines()[0]}") from exc
        self.ref = ref
        self._fingerprint = f"{fingerprint(ref)}-torch"

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length or 512)

    def encode_batch(self, texts: Sequence[str]) -> Embeddings:
        vectors = self.model.encode(
            list(texts), batch_size=len(texts), convert_to_numpy=True, normalize_embeddings=True
        )
        return np.asarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        encoded = self.model.tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]
