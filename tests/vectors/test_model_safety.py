"""Models are untrusted: content fingerprints, no download unless asked, never a model folder's code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dupfind.errors import DupfindError
from dupfind.vectors.backends import export
from dupfind.vectors.model import ModelRef, builtin_model_dir, fingerprint, resolve_model

ROOT = Path(__file__).resolve().parents[2]
HUB_NAME = "sentence-transformers/paraphrase-MiniLM-L3-v2"


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("DUPFIND_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("dupfind.vectors.model._FRESH_SECONDS", -1.0)  # remember even files written just now
    return tmp_path / "cache"


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"A" * 1000)
    return folder


def fake_export(builds: list[Path]) -> object:
    def build(source: Path, out: Path) -> None:
        builds.append(source)
        meta = {"max_seq_length": 8, "do_lower_case": False, "input_names": ["input_ids"]}
        (out / export.META_FILE).write_text(json.dumps(meta), encoding="utf-8")

    return build


def replace_keeping_size_and_mtime(file: Path, data: bytes) -> None:
    """What `cp -p` or `tar x` does: new content, same size, the old mtime restored."""
    before = file.stat()
    time.sleep(0.05)  # past a coarse timestamp tick
    file.write_bytes(data)
    os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert file.stat().st_size == before.st_size and file.stat().st_mtime_ns == before.st_mtime_ns


def test_new_weights_with_the_same_size_and_mtime_are_exported_again(
    cache: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[Path] = []
    monkeypatch.setattr(export, "export_onnx", fake_export(builds))
    ref = resolve_model(str(tiny_model))
    first = export.ensure_exported(ref)
    assert export.ensure_exported(ref).path == first.path and len(builds) == 1
    replace_keeping_size_and_mtime(tiny_model / "model.safetensors", b"B" * 1000)
    second = export.ensure_exported(ref)
    assert second.path != first.path and len(builds) == 2
    assert second.model_fingerprint == fingerprint(ref) != first.model_fingerprint


def test_the_fingerprint_is_remembered(cache: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = resolve_model(str(tiny_model))
    value = fingerprint(ref)
    assert len(list((cache / "fingerprints").iterdir())) == 1

    def no_hashing(*args: object) -> str:
        raise AssertionError("hashed again")

    monkeypatch.setattr("dupfind.vectors.model._content_hash", no_hashing)
    assert fingerprint(ref) == value


def test_an_empty_or_damaged_memo_is_ignored(cache: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[Path] = []
    monkeypatch.setattr(export, "export_onnx", fake_export(builds))
    ref = resolve_model(str(tiny_model))
    exported = export.ensure_exported(ref)
    for content in (b"", b"not a hash\n"):
        for memo in (cache / "fingerprints").iterdir():
            memo.write_bytes(content)
        assert export.ensure_exported(ref).path == exported.path
    assert len(builds) == 1


def test_memos_are_flushed_to_disk(cache: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    fingerprint(resolve_model(str(tiny_model)))
    assert synced


def test_one_fingerprint_function() -> None:
    assert not hasattr(export, "model_fingerprint")


def test_a_hub_name_needs_an_explicit_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DUPFIND_ALLOW_DOWNLOADS", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(DupfindError, match="DUPFIND_ALLOW_DOWNLOADS=1") as caught:
        resolve_model(HUB_NAME)
    assert "\n" not in str(caught.value)
    with pytest.raises(DupfindError, match="does not exist"):
        resolve_model("./no-such-model")
    monkeypatch.setenv("DUPFIND_ALLOW_DOWNLOADS", "1")
    assert resolve_model(HUB_NAME) == ModelRef(HUB_NAME, None)


def run_offline(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`dupfind ARGS` in a process where every network connection fails loudly."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "DUPFIND_ALLOW"))}
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "tests.no_network", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_a_mistyped_model_never_reaches_the_network(tmp_path: Path) -> None:
    (tmp_path / "q.txt").write_text("How do I learn Python?\nHow can I learn Python?\n", encoding="utf-8")
    result = run_offline("mine", "q.txt", "--model", "sentence-transformers/all-MiniLM-L6-v3", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert "network" not in result.stderr and "DUPFIND_ALLOW_DOWNLOADS=1" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def custom_code_model(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the built-in model whose config asks to run a module that writes a marker file when imported."""
    folder, marker = tmp_path / "custom-model", tmp_path / "marker"
    shutil.copytree(builtin_model_dir(), folder, ignore=shutil.ignore_patterns("model.safetensors"))
    (folder / "model.safetensors").symlink_to(builtin_model_dir() / "model.safetensors")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n", encoding="utf-8")
    return folder, marker


def test_a_model_with_custom_code_is_refused_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dupfind.quality.training.trainer import _load_model
    from dupfind.vectors.backends.torch_backend import TorchEncoder

    monkeypatch.setenv("DUPFIND_CACHE_DIR", str(tmp_path / "cache"))
    folder, marker = custom_code_model(tmp_path)
    attempts = [
        lambda: resolve_model(str(folder)),
        lambda: export.export_onnx(folder, tmp_path),
        lambda: export.ensure_exported(ModelRef("custom", folder)),
        lambda: TorchEncoder(ModelRef("custom", folder)),
        lambda: _load_model(str(folder)),
    ]
    for attempt in attempts:
        with pytest.raises(DupfindError, match="never runs code from a model folder") as caught:
            attempt()
        assert "auto_map" in str(caught.value) and "\n" not in str(caught.value)
    assert not marker.exists()
    assert capsys.readouterr().out == ""


def test_a_custom_module_in_modules_json_is_refused(tmp_path: Path) -> None:
    folder, _ = custom_code_model(tmp_path)
    (folder / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    modules[0]["type"] = "evil.EvilModule"
    (folder / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    with pytest.raises(DupfindError, match=r"module 'evil\.EvilModule'"):
        resolve_model(str(folder))


def test_a_folder_named_like_a_built_in_model_is_not_used_without_a_word(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dupfind.vectors.model import BASE_MODEL, resolve_model

    folder = tmp_path / BASE_MODEL
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match=r"built-in model of that name, not the folder \./base"):
        assert resolve_model(BASE_MODEL).path != folder.resolve()
    assert resolve_model(f"./{BASE_MODEL}").path == folder.resolve()


def model_pointing_out(tmp_path: Path, how: str) -> Path:
    """A model folder whose transformer module (or its weights) lies outside it, in `elsewhere/`."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    (elsewhere / "model.safetensors").write_bytes(b"A" * 1000)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}', encoding="utf-8")
    path = {"parent": "../elsewhere", "absolute": str(elsewhere), "symlink": "0_Transformer"}.get(how, "")
    if how == "symlink":
        (folder / "0_Transformer").symlink_to(elsewhere, target_is_directory=True)
    if how == "weights":
        (folder / "model.safetensors").symlink_to(elsewhere / "model.safetensors")
    modules = [
        {"idx": 0, "name": "0", "path": path, "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    return folder


@pytest.mark.parametrize("how", ["parent", "absolute", "symlink", "weights"])
def test_a_model_that_points_outside_its_folder_is_refused_before_loading(tmp_path: Path, how: str) -> None:
    from dupfind.vectors.backends.torch_backend import TorchEncoder

    folder = model_pointing_out(tmp_path, how)
    attempts = [
        lambda: resolve_model(str(folder)),
        lambda: export.export_onnx(folder, tmp_path),
        lambda: TorchEncoder(ModelRef("outside", folder)),
    ]
    for attempt in attempts:
        with pytest.raises(DupfindError, match="outside the model folder; dupfind reads a model from its own folder"):
            attempt()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "model"]


def test_the_cli_refuses_a_model_pointing_outside_in_one_line(tmp_path: Path) -> None:
    folder = model_pointing_out(tmp_path, "parent")
    (tmp_path / "q.txt").write_text("How do I learn Python?\nHow can I learn Python?\n", encoding="utf-8")
    result = run_offline("mine", "q.txt", "--model", str(folder), cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert "modules.json puts a module at '../elsewhere', outside the model folder" in result.stderr


def test_pickled_weights_are_never_unpickled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pytorch_model.bin is a pickle: the loaders must read it with weights_only (no code), whatever it holds."""
    import pickle

    from dupfind.vectors.backends.torch_backend import TorchEncoder

    monkeypatch.setenv("DUPFIND_CACHE_DIR", str(tmp_path / "cache"))
    marker = tmp_path / "marker"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    folder = tmp_path / "pickled-model"
    shutil.copytree(builtin_model_dir(), folder, ignore=shutil.ignore_patterns("model.safetensors"))
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Evil()))
    for attempt in (lambda: export.export_onnx(folder, tmp_path), lambda: TorchEncoder(ModelRef("pickled", folder))):
        with pytest.raises(Exception):  # noqa: B017  (any refusal; what matters is the marker)
            attempt()
    assert not marker.exists()
