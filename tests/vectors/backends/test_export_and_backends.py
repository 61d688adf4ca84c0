"""The ONNX and OpenVINO backends: export and its cache, agreement with torch, and a torch-free start."""

from __future__ import annotations

import json
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from dupfind.errors import DupfindError
from dupfind.io.cache_dir import cache_dir
from dupfind.vectors import backends
from dupfind.vectors.backends import DEFAULT_BACKEND, backend_names, export, load_encoder
from dupfind.vectors.encoding import Encoder, encode
from dupfind.vectors.model import ModelRef, builtin_model_dir, fingerprint, resolve_model

EXPORTED_BACKENDS = ("onnx", "openvino")

SENTENCES = [
    "How do I learn Python?",
    "What is the best way to learn Python programming?",
    "How can I lose weight quickly?",
    "What are some healthy ways to lose weight fast?",
    "Why is the sky blue?",
    "What is the capital of France?",
    "Paris is the capital of France.",
    "x",
    "",
    "   leading and trailing spaces   ",
    "ALL CAPS QUESTION ABOUT THE STOCK MARKET?",
    "Is 2 + 2 = 4 or 5?",
    "What does `print(f'{x!r}')` do in Python 3.11?",
    "Qu'est-ce que l'apprentissage automatique ?",
    "¿Cuál es la mejor manera de aprender español?",
    "Wie lerne ich am schnellsten Deutsch?",
    "日本語を勉強するのに一番いい方法は何ですか？",
    "Что такое машинное обучение?",
    "🙂🙂 Which emoji do people use most? 🚀",
    "Naïve café résumé coöperate",
    "How do I get a U.S. visa from India (H-1B)?",
    "What's the difference between a virus and a bacterium?",
    "Who will win the 2024 US presidential election?",
    "Should I buy an iPhone 15 or a Samsung Galaxy S24?",
    "What is the meaning of life, the universe and everything?",
    "How do black holes form?",
    "What are the side effects of ibuprofen?",
    "Can dogs eat chocolate?",
    "Is it safe to eat raw cookie dough?",
    "How can I improve my English speaking skills?",
    "What is quantum computing in simple terms?",
    "How do I reset my Gmail password?",
    "Which is better: Android or iOS?",
    "Why do cats purr?",
    "How much money do YouTubers make per view?",
    "What is the fastest way to get rich?",
    "How do I start a startup with no money?",
    "What is a good book to read on a long flight?",
    "Why is my internet so slow at night??!!",
    "tabs\tand\nnewlines\r\nin a question",
    "a a a a a a a a a a a a a a a a a a a a",
    "What happens if you don't pay your credit card bill?",
    "How does the stock market work, and how can a beginner invest safely in index funds?",
    "I have been working as a software engineer for ten years and I am thinking about moving into "
    "management. What are the most important skills I should develop first, and how do I know if I "
    "would actually enjoy the job?",
    "What is 1/0?",
    "<html><body>What is HTML?</body></html>",
    "https://www.example.com/path?query=1 — is this URL safe?",
    "Is Donald Trump a good president?",
    "Why do people like Donald Trump?",
    "What's your favourite colour and why?",
]
LONG_TEXT = " ".join(f"word{i} is followed by another one, and the sentence goes on." for i in range(80))


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cache directory of its own for this module, so that the user's cache is never touched."""
    folder = tmp_path_factory.mktemp("dupfind-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DUPFIND_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="module")
def builtin() -> ModelRef:
    return resolve_model(None)


@pytest.fixture(scope="module")
def torch_encoder(builtin: ModelRef) -> Encoder:
    from dupfind.vectors.backends.torch_backend import TorchEncoder

    return TorchEncoder(builtin)


@pytest.fixture(scope="module")
def exported_encoders(module_cache: Path, builtin: ModelRef) -> dict[str, Encoder]:
    from dupfind.vectors.backends.onnx_backend import OnnxEncoder
    from dupfind.vectors.backends.openvino_backend import OpenVinoEncoder

    return {"onnx": OnnxEncoder(builtin), "openvino": OpenVinoEncoder(builtin)}


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DUPFIND_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "dupfind"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "dupfind"
    monkeypatch.setenv("DUPFIND_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


@pytest.mark.parametrize(
    "config",
    [
        {"pooling_mode_mean_tokens": True},
        {"pooling_mode": "mean"},
        {"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False, "word_embedding_dimension": 384},
    ],
)
def test_mean_pooling_is_accepted(config: dict[str, object]) -> None:
    export.check_mean_pooling(config)


@pytest.mark.parametrize(
    "config",
    [
        {"pooling_mode_cls_token": True},
        {"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True},
        {"pooling_mode": "lasttoken"},
        {},
    ],
)
def test_other_pooling_is_refused(config: dict[str, object]) -> None:
    with pytest.raises(DupfindError, match="mean pooling only"):
        export.check_mean_pooling(config)


def test_export_refuses_a_cls_pooling_model_before_loading_torch(tmp_path: Path) -> None:
    (tmp_path / "1_Pooling").mkdir()
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    with pytest.raises(DupfindError, match="pooling_mode_cls_token"):
        export.export_onnx(tmp_path, tmp_path / "out")


def test_export_refuses_extra_modules(tmp_path: Path) -> None:
    modules = [
        {"path": "", "type": "sentence_transformers.models.Transformer"},
        {"path": "2", "type": "sentence_transformers.models.Dense"},
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(DupfindError, match="'Dense' module"):
        export.export_onnx(tmp_path, tmp_path / "out")


@pytest.mark.slow
@pytest.mark.parametrize("backend", EXPORTED_BACKENDS)
def test_agrees_with_torch(backend: str, exported_encoders: dict[str, Encoder], torch_encoder: Encoder) -> None:
    expected = encode(torch_encoder, SENTENCES, batch_size=16)
    actual = encode(exported_encoders[backend], SENTENCES, batch_size=16)
    cosines = np.sum(expected * actual, axis=1)
    assert cosines.min() >= 0.9999, SENTENCES[int(cosines.argmin())]
    assert exported_encoders[backend].fingerprint.endswith(f"-{backend}")
    assert exported_encoders[backend].max_seq_length == torch_encoder.max_seq_length == 256


@pytest.mark.slow
@pytest.mark.parametrize("backend", EXPORTED_BACKENDS)
def test_padding_does_not_change_an_embedding(backend: str, exported_encoders: dict[str, Encoder]) -> None:
    encoder = exported_encoders[backend]
    alone = encoder.encode_batch(["Why is the sky blue?"])[0]
    padded = encoder.encode_batch([SENTENCES[43], "Why is the sky blue?", LONG_TEXT])[1]
    assert np.abs(alone - padded).max() < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("backend", EXPORTED_BACKENDS)
def test_long_texts_are_truncated_as_torch_does(
    backend: str, exported_encoders: dict[str, Encoder], torch_encoder: Encoder
) -> None:
    texts = [LONG_TEXT, "short", LONG_TEXT.upper()]
    counts = exported_encoders[backend].count_tokens(texts)
    assert counts == torch_encoder.count_tokens(texts)
    assert counts[0] > torch_encoder.max_seq_length and counts[1] < 10
    cosines = np.sum(encode(torch_encoder, texts) * encode(exported_encoders[backend], texts), axis=1)
    assert cosines.min() >= 0.9999
    longer = LONG_TEXT + " and then something entirely different about cooking pasta."
    assert (
        np.abs(encode(exported_encoders[backend], [longer]) - encode(exported_encoders[backend], [LONG_TEXT])).max()
        < 1e-6
    )


@pytest.mark.slow
def test_the_export_is_reused(
    exported_encoders: dict[str, Encoder], builtin: ModelRef, module_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dupfind.vectors.backends.onnx_backend import OnnxEncoder
    from dupfind.vectors.backends.openvino_backend import OpenVinoEncoder

    def no_export(*args: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(export, "export_onnx", no_export)
    monkeypatch.setattr(export, "_convert_to_openvino", no_export)
    monkeypatch.setattr("dupfind.vectors.model._content_hash", no_export)
    for encoder in (OnnxEncoder(builtin), OpenVinoEncoder(builtin)):
        assert np.array_equal(
            encoder.encode_batch(SENTENCES[:3]), exported_encoders[encoder.backend].encode_batch(SENTENCES[:3])
        )
    assert [path.name for path in (module_cache / "models").iterdir()] == [fingerprint(builtin)]


@pytest.mark.slow
def test_the_default_backend_is_used_by_default(
    exported_encoders: dict[str, Encoder], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backends, "cpu_features", lambda: frozenset({"avx2"}))  # a CPU where auto is fp32
    monkeypatch.setattr(backends, "cuda_visible", lambda: False)
    assert DEFAULT_BACKEND in backend_names()
    assert load_encoder().fingerprint == exported_encoders[DEFAULT_BACKEND].fingerprint


@pytest.mark.slow
@pytest.mark.parametrize("backend", EXPORTED_BACKENDS)
def test_pickles_by_reloading(backend: str, exported_encoders: dict[str, Encoder]) -> None:
    encoder = exported_encoders[backend]
    copy = pickle.loads(pickle.dumps(encoder))
    assert copy.fingerprint == encoder.fingerprint
    assert np.array_equal(copy.encode_batch(SENTENCES[:4]), encoder.encode_batch(SENTENCES[:4]))


@pytest.mark.slow
@pytest.mark.parametrize("backend", EXPORTED_BACKENDS)
def test_a_cached_backend_never_imports_torch(
    backend: str, exported_encoders: dict[str, Encoder], module_cache: Path
) -> None:
    script = f"""
import sys
import time
from dupfind.vectors.backends import load_encoder
encoder = load_encoder(None, {backend!r})
assert encoder.encode_batch(["a", "b"]).shape == (2, 384)
heavy = sorted({{"torch", "transformers", "sentence_transformers"}} & set(sys.modules))
assert not heavy, heavy
"""
    env = {"DUPFIND_CACHE_DIR": str(module_cache), "PATH": "/usr/bin:/bin", "HOME": str(module_cache)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_token_prefix_keeps_the_tokens_that_truncation_keeps() -> None:
    def count(text: str) -> int:  # one token per word, plus two special tokens
        return len(text.split()) + 2

    assert export.token_prefix("short text", 4, count) == "short text"
    words = [f"w{i}" for i in range(5000)]
    prefix = export.token_prefix(" ".join(words), 4, count)
    assert len(prefix) <= 4 * export.CHARS_PER_TOKEN and prefix.split() == words[: len(prefix.split())]
    assert count(prefix) > 4
    spaced = "a" + " " * 10_000 + "b c d e f"  # few tokens in a long prefix: the whole text is kept
    assert export.token_prefix(spaced, 4, count) == spaced


class TokenizerOnly(export.ExportedEncoder):
    """The built-in model's tokenisation, with no exported model behind it."""

    backend = "tokens"

    def _load_runner(self) -> export.Runner:
        return lambda features: np.zeros((len(features["input_ids"]), 1), dtype=np.float32)


@pytest.fixture
def tokenizer_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> TokenizerOnly:
    exported = export.ExportedModel(tmp_path, "test", 256, False, ("input_ids", "attention_mask"))
    (tmp_path / export.TOKENIZER_FILE).write_bytes((builtin_model_dir() / export.TOKENIZER_FILE).read_bytes())
    monkeypatch.setattr(export, "ensure_exported", lambda ref, pairs=False: exported)
    return TokenizerOnly(ModelRef("test", tmp_path))


def test_the_runtime_loads_at_the_first_batch_not_to_count_tokens(
    tokenizer_only: TokenizerOnly, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ray driver loads the encoder only to count tokens and know its fingerprint: no runtime for that."""
    loads: list[TokenizerOnly] = []

    def counted(self: TokenizerOnly) -> export.Runner:
        loads.append(self)
        return lambda features: np.ones((*features["input_ids"].shape, 4), dtype=np.float32)

    monkeypatch.setattr(TokenizerOnly, "_load_runner", counted)
    assert tokenizer_only.count_tokens(["How do I learn Python?"]) == [8]
    assert tokenizer_only.fingerprint == "test-tokens" and loads == []
    tokenizer_only.encode_batch(["How do I learn Python?", "Why?"])
    tokenizer_only.encode_batch(["Why not?"])
    assert loads == [tokenizer_only]  # once, at the first batch


def test_a_10_mb_question_reaches_the_tokenizer_only_as_a_short_prefix(tokenizer_only: TokenizerOnly) -> None:
    """Tokenising 10 MB takes seconds and gigabytes: only a prefix of a few thousand characters is tokenised, and
    it gives the whole text's first tokens (its time and memory are bench/bench_encode.py's to measure)."""
    huge = " ".join(f"word{i % 1000} and some more text," for i in range(400_000))
    assert len(huge) > 10_000_000
    tokenizer = tokenizer_only._counter()
    seen: list[int] = []
    real = tokenizer.encode_batch_fast

    class Recording:
        def __getattr__(self, name: str) -> object:
            return getattr(tokenizer, name)

        def encode_batch_fast(self, texts: list[str]) -> object:
            seen.extend(len(text) for text in texts)
            return real(texts)

    tokenizer_only._untruncated = Recording()  # type: ignore[assignment]
    [count] = tokenizer_only.count_tokens([huge])
    [prepared] = tokenizer_only._prepare([huge])
    features = export.tokenize(tokenizer_only._tokenizer, [prepared], ("input_ids",))
    assert seen and max(seen) <= 2 * 256 * export.CHARS_PER_TOKEN and len(prepared) < 10_000
    assert count > 256 and features["input_ids"].shape == (1, 256)
    whole = export.tokenize(tokenizer_only._tokenizer, [huge[:200_000]], ("input_ids",))
    assert np.array_equal(features["input_ids"], whole["input_ids"])


@pytest.mark.slow
@pytest.mark.parametrize("backend", EXPORTED_BACKENDS)
def test_a_cut_long_text_embeds_as_the_whole_text_truncated(
    backend: str, exported_encoders: dict[str, Encoder], torch_encoder: Encoder
) -> None:
    text = " ".join(f"sentence {i} about cooking pasta at home, and why it tastes good." for i in range(300))
    assert len(text) > 4 * 256 * export.CHARS_PER_TOKEN
    encoder = exported_encoders[backend]
    assert isinstance(encoder, export.ExportedEncoder)
    whole = export.tokenize(encoder._tokenizer, [text], encoder.exported.input_names)
    expected = export.normalize(export.mean_pool(encoder._run(whole), whole["attention_mask"]))
    assert np.array_equal(encoder.encode_batch([text]), expected)
    from dupfind.vectors.backends.torch_backend import TorchEncoder

    assert isinstance(torch_encoder, TorchEncoder)
    reference = torch_encoder.model.encode([text], convert_to_numpy=True, normalize_embeddings=True)
    assert np.array_equal(torch_encoder.encode_batch([text]), reference)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_int8_build_at_once_and_leaves_no_model(tmp_path: Path, signum: int, code: int) -> None:
    """The quantisation step holds signals as NNCF's and OpenVINO's native calls do; the run must still stop
    (130/143) before the step completes, and leave neither a model nor a half-built folder in the cache."""
    folder = tmp_path / "export"
    root = Path(__file__).resolve().parents[3]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.vectors.backends.int8_build", str(folder)],
        cwd=root,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (folder / "started").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.stderr
        time.sleep(0.05)
    process.send_signal(signum)
    try:
        _, err = process.communicate(timeout=60)  # the step never returns by itself
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("the run went on building the int8 model after the signal")
    assert process.returncode == code, err
    assert "Traceback" not in err
    assert sorted(path.name for path in folder.iterdir()) == ["openvino", "started"]
