"""`uv run plot`: loss, learning-rate and throughput curves from one or more metrics.csv."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from gpt_cli._common import user_errors


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="plot",
        description=(
            "Plot train/val loss against steps and tokens, the learning rate and tokens/s "
            "from metrics.csv files; several runs share each figure, labelled by run folder."
        ),
    )
    p.add_argument(
        "metrics", nargs="+", metavar="METRICS_CSV", help="metrics.csv files (or run folders)"
    )
    p.add_argument("--out", required=True, help="folder for the figures")
    p.add_argument(
        "--format",
        choices=["png", "svg"],
        default="png",
        help="png (default) or svg; svg writes the PNGs as well",
    )
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with user_errors():
        from gpt_eval.plots import plot_runs

        formats = ["png"] if args.format == "png" else ["png", "svg"]
        written = plot_runs(args.metrics, args.out, formats)
        for path in written:
            print(f"wrote {path}")
