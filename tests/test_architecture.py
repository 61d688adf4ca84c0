"""The layers are a contract: import-linter's contracts in pyproject.toml hold (as `make lint` checks), and no
module outgrows its room."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = "from importlinter.cli import lint_imports; raise SystemExit(lint_imports(no_cache=True, no_logo=True))"


def lint(project: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run([sys.executable, "-c", LINT], cwd=project, env=env, capture_output=True, text=True)


def test_import_contracts_hold() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" KEPT") == 5 and "BROKEN" not in result.stdout


def _lint_with(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    """import-linter on a copy of the package in which `module` (a path under dupfind/) also runs `line`."""
    shutil.copytree(ROOT / "dupfind", tmp_path / "dupfind", ignore=shutil.ignore_patterns("models"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "dupfind" / module
    assert target.is_file()
    with target.open("a", encoding="utf-8") as handle:
        handle.write(f"\n{line}  # noqa\n")
    return lint(tmp_path)


def test_a_library_module_importing_the_cli_breaks_a_contract(tmp_path: Path) -> None:
    result = _lint_with(tmp_path, "pairs/mining.py", "import dupfind.cli.options")
    assert result.returncode == 1 and "The library never imports the command line BROKEN" in result.stdout


def test_a_lower_layer_importing_a_higher_one_breaks_the_layers(tmp_path: Path) -> None:
    result = _lint_with(tmp_path, "vectors/embedder.py", "import dupfind.pairs.mining")
    assert result.returncode == 1 and "over io BROKEN" in result.stdout


def test_no_module_outgrows_its_room() -> None:
    """At most 450 lines a library module, 300 a command-line module."""
    too_long = []
    for file in sorted((ROOT / "dupfind").rglob("*.py")):
        limit = 300 if "cli" in file.relative_to(ROOT).parts else 450
        lines = len(file.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            too_long.append(f"{file.relative_to(ROOT)}: {lines} lines (at most {limit})")
    assert not too_long, "\n".join(too_long)


def test_every_public_name_of_the_package_imports() -> None:
    import dupfind

    missing = [name for name in dupfind.__all__ if getattr(dupfind, name, None) is None]
    assert not missing
