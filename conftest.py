"""Fixtures shared by every test in the workspace (test module names must be unique)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The root of the gptkit checkout."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def prepared_prefix(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    """prepared(n): a data folder prepared by gpt_train (char tokenizer, default split) from
    the first n bytes of the committed corpora/tinyshakespeare.txt, made once per n for the
    session. Tests only read it: their runs write to folders of their own."""
    made: dict[int, Path] = {}

    def prepared(n: int) -> Path:
        if n not in made:
            from gpt_train.prepare import prepare_data  # torch: only for tests that train

            tmp = tmp_path_factory.mktemp(f"prefix{n}")
            src = tmp / "shakespeare.txt"
            src.write_bytes((REPO_ROOT / "corpora" / "tinyshakespeare.txt").read_bytes()[:n])
            prepare_data([str(src)], tmp / "prepared", progress=False)
            made[n] = tmp / "prepared"
        return made[n]

    return prepared
