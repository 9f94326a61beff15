"""`uv run train`: train a GPT from a YAML config."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from gpt_cli._common import not_yet_available


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train", description="Train a GPT model from a YAML config.")
    p.add_argument("--config", required=True, help="YAML config file (see configs/)")
    p.add_argument("--run-dir", help="run folder (default: runs/<config name>)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value; repeatable",
    )
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default=None)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    build_parser().parse_args(argv)
    not_yet_available("train")
