"""`uv run sample`: generate text from a trained run."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from gpt_cli._common import not_yet_available


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sample", description="Generate text from a trained run.")
    p.add_argument("--run", required=True, help="run folder written by `train`")
    p.add_argument("--checkpoint", default="latest", help="latest | best | step-N")
    p.add_argument("--prompt", default="", help="text to continue")
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    build_parser().parse_args(argv)
    not_yet_available("sample")
