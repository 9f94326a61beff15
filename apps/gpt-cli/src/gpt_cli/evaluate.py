"""`uv run evaluate`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from gpt_cli._common import not_yet_available


def build_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog="evaluate", description="evaluate (coming soon).")


def main(argv: Sequence[str] | None = None) -> None:
    build_parser().parse_args(argv)
    not_yet_available("evaluate")
