"""Helpers shared by every command: consistent error exits."""

from __future__ import annotations

import sys
from typing import NoReturn


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error for the user (no traceback) and exit."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def not_yet_available(command: str) -> NoReturn:
    """Exit cleanly for a command whose implementation has not landed yet."""
    fail(f"`{command}` is not yet available in this version of gptkit", code=3)
