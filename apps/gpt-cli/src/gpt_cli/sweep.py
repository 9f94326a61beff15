"""`uv run sweep`: run a grid or random hyper-parameter search."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from gpt_cli._common import not_yet_available


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sweep", description="Run a hyper-parameter sweep.")
    p.add_argument("--config", required=True, help="sweep YAML (base config plus search space)")
    p.add_argument("--out", help="sweep folder")
    p.add_argument("--max-trials", type=int, default=None)
    p.add_argument("--parallel", type=int, default=1)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    build_parser().parse_args(argv)
    not_yet_available("sweep")
