"""The layers are a contract: import-linter's contracts in pyproject.toml hold (as `make lint` checks)."""

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
    assert result.stdout.count(" KEPT") == 4 and "BROKEN" not in result.stdout


def test_a_library_module_importing_the_cli_breaks_a_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "dupfind", tmp_path / "dupfind")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / "dupfind" / "mining.py").open("a", encoding="utf-8") as handle:
        handle.write("\nimport dupfind.cli.common  # noqa\n")
    result = lint(tmp_path)
    assert result.returncode == 1 and "The library never imports the command line BROKEN" in result.stdout
