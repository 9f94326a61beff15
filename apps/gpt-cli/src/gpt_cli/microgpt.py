"""`uv run microgpt`: train the pure-Python GPT on a list of names and print new ones."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from gpt_cli._common import not_yet_available


def build_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog="microgpt", description="Pure-Python GPT on names.")


def main(argv: Sequence[str] | None = None) -> None:
    build_parser().parse_args(argv)
    not_yet_available("microgpt")
