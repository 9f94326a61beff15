"""The one exception this package raises for bad user input."""

from __future__ import annotations


class TokenizerError(ValueError):
    """A user-facing problem: bad argument, unreadable or corrupt file, disallowed special text."""
