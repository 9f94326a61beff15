"""Helpers shared by every command: consistent, traceback-free error exits, and the
arguments that name a run's checkpoint."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error for the user (no traceback) and exit."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """--run and --checkpoint, the same for every command that reads a trained run."""
    parser.add_argument("--run", required=True, help="run folder written by `train`")
    parser.add_argument(
        "--checkpoint", default="latest", help="latest | best | step-N | a checkpoint folder"
    )


def not_yet_available(command: str) -> NoReturn:
    """Exit cleanly for a command whose implementation has not landed yet."""
    fail(f"`{command}` is not yet available in this version of gptkit", code=3)


def _user_error_types() -> tuple[type[BaseException], ...]:
    """The exception classes the packages raise for bad user input (imported lazily)."""
    types: list[type[BaseException]] = [FileNotFoundError, IsADirectoryError, PermissionError]
    for module, name in [
        ("gpt_tokenizers", "TokenizerError"),
        ("gpt_core", "ConfigError"),
        ("gpt_train", "TrainError"),
        ("gpt_eval", "EvalError"),
        ("gpt_micro", "MicroError"),
    ]:
        try:
            mod = __import__(module, fromlist=[name])
            types.append(getattr(mod, name))
        except (ImportError, AttributeError):
            continue
    return tuple(types)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the packages' user-facing errors into a one-line message and exit code 2.

    Ctrl-C exits with 130 without a traceback.
    """
    try:
        yield
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except _user_error_types() as exc:
        fail(str(exc))
