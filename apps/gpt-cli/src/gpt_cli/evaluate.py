"""`uv run evaluate`: loss, perplexity and bits per byte of a checkpoint on text or a split."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gpt_cli._common import user_errors


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="evaluate",
        description=(
            "Validation loss, perplexity and bits per byte of a checkpoint, over "
            "non-overlapping windows of max_seq_len tokens covering a text file or a "
            "prepared split."
        ),
    )
    p.add_argument("--run", required=True, help="run folder written by `train`")
    p.add_argument(
        "--checkpoint", default="latest", help="latest | best | step-N | a checkpoint folder"
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", type=Path, help="a UTF-8 text file to score")
    src.add_argument(
        "--split", choices=["train", "val"], help="a prepared split of the run's data dir"
    )
    p.add_argument("--data-dir", type=Path, help="prepared data folder (default: the run's)")
    p.add_argument("--max-tokens", type=int, default=None, help="score only the first N tokens")
    p.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with user_errors():
        from gpt_eval import EvalError
        from gpt_eval.evaluate import evaluate_ids, read_split_tokens, read_text_tokens
        from gpt_train.runs import load_run

        if args.max_tokens is not None and args.max_tokens < 2:
            raise EvalError(f"--max-tokens must be at least 2, got {args.max_tokens}")
        if args.batch_size < 1:
            raise EvalError(f"--batch-size must be at least 1, got {args.batch_size}")
        run = load_run(args.run, checkpoint=args.checkpoint, device=args.device)
        ids: Sequence[int] | np.ndarray
        if args.input is not None:
            source = str(args.input)
            ids = read_text_tokens(run.tokenizer, args.input, args.max_tokens)
        else:
            data_dir = args.data_dir or Path(run.config.data.dir)
            source = f"{data_dir}/{args.split}.bin"
            ids = read_split_tokens(data_dir, args.split, args.max_tokens)

        def progress(done: int, total: int) -> None:
            print(f"\rscoring windows {done}/{total}", end="", file=sys.stderr, flush=True)
            if done == total:
                print(file=sys.stderr)

        show = progress if sys.stderr.isatty() else None
        result = evaluate_ids(run.model, ids, run.tokenizer.decode, args.batch_size, show)
        report = {
            "run": str(args.run),
            "checkpoint": str(run.checkpoint_path),
            "step": run.step,
            "input": source,
            "seq_len": run.model.config.max_seq_len,
            **result.to_dict(),
        }
        print(f"checkpoint     {run.checkpoint_path} (step {run.step})")
        print(f"input          {source}")
        print(f"tokens scored  {result.tokens:,} ({result.bytes:,} bytes, "
              f"{result.windows} windows of {report['seq_len']})")  # fmt: skip
        print(f"loss           {result.loss:.4f} nats/token")
        print(f"perplexity     {result.perplexity:.3f}")
        print(f"bits per byte  {result.bits_per_byte:.4f}")
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2) + "\n")
            print(f"wrote {args.json}")
