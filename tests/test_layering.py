"""The layering contract holds for the tree, and fails when a package imports upward."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGES = ["gpt_tokenizers", "gpt_core", "gpt_micro", "gpt_train", "gpt_eval", "gpt_cli"]


def _copy_sources(repo_root: Path, dest: Path) -> None:
    for src in [*repo_root.glob("packages/*/src/*"), *repo_root.glob("apps/*/src/*")]:
        if src.is_dir() and src.name in PACKAGES:
            shutil.copytree(src, dest / src.name, ignore=shutil.ignore_patterns("__pycache__"))


def _lint_imports(repo_root: Path, src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "lint-imports"),
            "--no-cache",
            "--config",
            str(repo_root / "pyproject.toml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=src,
        timeout=300,
    )


def test_contract_fails_on_an_upward_import(repo_root: Path, tmp_path: Path) -> None:
    _copy_sources(repo_root, tmp_path)
    clean = _lint_imports(repo_root, tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    (tmp_path / "gpt_core" / "_upward.py").write_text("import gpt_train\n")
    broken = _lint_imports(repo_root, tmp_path)
    assert broken.returncode != 0
    assert "gpt_core._upward -> gpt_train" in broken.stdout


def test_contract_fails_when_tokenizers_imports_torch(repo_root: Path, tmp_path: Path) -> None:
    _copy_sources(repo_root, tmp_path)
    (tmp_path / "gpt_tokenizers" / "_heavy.py").write_text("import torch\n")
    broken = _lint_imports(repo_root, tmp_path)
    assert broken.returncode != 0
    assert "gpt_tokenizers is usable without torch BROKEN" in broken.stdout
