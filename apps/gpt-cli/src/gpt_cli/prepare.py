"""`uv run prepare`: turn text files, folders and URLs into token files for `train`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from gpt_cli._common import user_errors


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prepare",
        description=(
            "Tokenize text files, folders of them and http(s) URLs (HTML pages are reduced to "
            "their visible text) into DATA_DIR/train.bin, val.bin, tokenizer.json and meta.json. "
            "DATA_DIR is built under a temporary name and renamed into place when complete, so "
            "a failed run leaves an earlier dataset as it was; a DATA_DIR holding other files "
            "is refused."
        ),
    )
    p.add_argument(
        "--input",
        nargs="+",
        action="extend",
        required=True,
        metavar="PATH_OR_URL",
        help="text file, folder or http(s) URL; repeatable. A URL may end in #sha256=HEX",
    )
    p.add_argument("--out", required=True, type=Path, metavar="DATA_DIR", help="output folder")
    tok = p.add_mutually_exclusive_group()
    tok.add_argument("--tokenizer", metavar="TOK_JSON", help="use this saved tokenizer")
    tok.add_argument("--char", action="store_true", help="character-level vocabulary (default)")
    tok.add_argument(
        "--vocab-size", type=int, metavar="N", help="train a byte-level BPE tokenizer of N tokens"
    )
    p.add_argument(
        "--val-fraction", type=float, default=0.1, help="tail of each document kept for val"
    )
    p.add_argument(
        "--sha256",
        action="append",
        default=[],
        metavar="HEX",
        help="expected checksum of each URL input, in order (repeatable)",
    )
    p.add_argument("--cache-dir", type=Path, help="download cache (default ~/.cache/gptkit)")
    p.add_argument(
        "--download-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="fail a download that receives nothing for this long (default 60)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with user_errors():
        from gpt_train.download import attach_checksums
        from gpt_train.prepare import prepare_data

        spec = "bpe" if args.vocab_size is not None else args.tokenizer or "char"
        meta = prepare_data(
            attach_checksums(args.input, args.sha256),
            args.out,
            tokenizer=spec,
            vocab_size=args.vocab_size,
            val_fraction=args.val_fraction,
            cache_dir=args.cache_dir,
            progress=not args.quiet,
            download_timeout=args.download_timeout,
        )
        print(
            f"wrote {args.out}: {meta['train_tokens']:,} train / {meta['val_tokens']:,} val "
            f"tokens ({meta['dtype']}, vocab {meta['vocab_size']}) from "
            f"{len(meta['sources'])} document(s) in {meta['seconds']}s"
        )


if __name__ == "__main__":
    main()
