"""Fixtures shared by every test in the workspace (test module names must be unique)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent


@pytest.fixture
def repo_root() -> Path:
    """The root of the gptkit checkout."""
    return REPO_ROOT
