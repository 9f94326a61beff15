"""`uv run export`: write a trained run as a transformers folder, safetensors or tiktoken files.

export --run runs/NAME [--checkpoint best|latest|step-N] --format hf|safetensors|tiktoken
       --out DIR [--overwrite]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from gpt_cli._common import add_run_arguments, user_errors


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="export",
        description=(
            "Export a run's checkpoint: hf (a folder transformers' AutoModelForCausalLM and "
            "AutoTokenizer load), safetensors (our state dict + config.json) or tiktoken "
            "(the rank file + pattern and special tokens)."
        ),
    )
    add_run_arguments(p)
    p.add_argument("--format", choices=["hf", "safetensors", "tiktoken"], default="hf")
    p.add_argument("--out", required=True, type=Path, help="folder to write (new or empty)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace a non-empty --out (once complete)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with user_errors():
        from gpt_eval.export import export_run

        out = export_run(args.run, args.out, args.format, args.checkpoint, args.overwrite)
        files = ", ".join(sorted(p.name for p in out.iterdir()))
        print(f"wrote {args.format} export of {args.run} to {out} ({files})")
