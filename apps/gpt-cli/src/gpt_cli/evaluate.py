"""`uv run evaluate`: loss, perplexity and bits per byte of a checkpoint on text or a split."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from gpt_cli._common import add_run_arguments, user_errors


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="evaluate",
        description=(
            "Validation loss, perplexity and bits per byte of a checkpoint, over "
            "non-overlapping windows of max_seq_len tokens covering a text file or a "
            "prepared split."
        ),
    )
    add_run_arguments(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", type=Path, help="a UTF-8 text file to score")
    src.add_argument(
        "--split", choices=["train", "val"], help="a prepared split of the run's data dir"
    )
    p.add_argument("--data-dir", type=Path, help="prepared data folder (default: the run's)")
    p.add_argument("--max-tokens", type=int, default=None, help="score only the first N tokens")
    p.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's, one per core)")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with user_errors():
        from gpt_eval.evaluate import evaluate_run
        from gpt_tokenizers.atomic import write_text_atomic
        from gpt_train.threads import set_threads

        set_threads(args.threads)
        r = evaluate_run(
            args.run,
            checkpoint=args.checkpoint,
            input_path=args.input,
            split=args.split,
            data_dir=args.data_dir,
            max_tokens=args.max_tokens,
            batch_size=args.batch_size,
            device=args.device,
        )
        print(f"checkpoint     {r['checkpoint']} (step {r['step']})")
        print(f"input          {r['input']}")
        if r["skipped_chars"]:
            print(f"skipped        {r['skipped_chars']:,} characters not in the vocabulary "
                  f"({r['skipped_distinct']!r})")  # fmt: skip
        print(f"tokens scored  {r['tokens']:,} ({r['bytes']:,} bytes, "
              f"{r['windows']} windows of {r['seq_len']})")  # fmt: skip
        print(f"loss           {r['loss']:.4f} nats/token")
        print(f"perplexity     {r['perplexity']:.3f}")
        print(f"bits per byte  {r['bits_per_byte']:.4f}")
        if args.json is not None:
            write_text_atomic(args.json, json.dumps(r, indent=2) + "\n")
            print(f"wrote {args.json}")
