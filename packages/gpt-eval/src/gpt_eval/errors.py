"""The one exception gpt_eval raises for bad user input (missing files, bad configs)."""

from __future__ import annotations


class EvalError(Exception):
    """A user-facing error from an evaluation tool: the message names the file, key or value."""
