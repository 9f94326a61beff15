"""`uv run tokenizer`: train, encode, decode and show tokenizers.

tokenizer train --input FILE... --vocab-size N [--pattern gpt4|gpt2|o200k|REGEX]
                [--special-token TEXT]... --out tok.json
tokenizer encode --tokenizer tok.json --text "hello"      # prints ids
tokenizer decode --tokenizer tok.json --ids "15339 1917"   # prints text
tokenizer show   --tokenizer tok.json --text "hello"       # coloured token boundaries
tokenizer import --from gpt2/ --out tok.json                # HF tokenizer.json / vocab+merges
tokenizer import --from cl100k_base.tiktoken --pattern gpt4 --special-token TEXT=ID --out F
tokenizer export --tokenizer tok.json --format hf|tiktoken --out DIR

A file --out names that already exists (for export: a file of the same name in DIR) is
refused before any work unless --overwrite is given; files are written atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from gpt_cli._common import fail, user_errors

OVERWRITE_HELP = "replace an existing --out file (refused otherwise)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tokenizer",
        description="Train a tokenizer, encode and decode with it, and see how it cuts text.",
    )
    sub = p.add_subparsers(
        dest="command", required=True, metavar="{train,encode,decode,show,import,export}"
    )

    t = sub.add_parser(
        "train",
        help="train a tokenizer on text files",
        description="Train a byte-level BPE (or char / word) tokenizer on UTF-8 text files.",
    )
    t.add_argument("--input", nargs="+", required=True, type=Path, metavar="FILE")
    t.add_argument("--out", required=True, type=Path, help="tokenizer JSON file to write")
    t.add_argument("--kind", choices=["bpe", "char", "word"], default="bpe")
    t.add_argument(
        "--vocab-size",
        type=int,
        help="total ids including special tokens (required for bpe and word)",
    )
    t.add_argument(
        "--pattern", default="gpt4", help="pre-split regex: gpt4 (default), gpt2, o200k or a regex"
    )
    t.add_argument(
        "--special-token",
        action="append",
        default=[],
        metavar="TEXT",
        help="a special token such as '<|endoftext|>' (repeatable; bpe only)",
    )
    t.add_argument("--eos", action="store_true", help="char/word: add an <eos> token")
    t.add_argument("--bos", action="store_true", help="char/word: add a <bos> token")
    t.add_argument(
        "--unknown",
        choices=["error", "replace", "skip"],
        default="error",
        help="char: what encode does with an unseen character",
    )
    t.add_argument("--processes", type=int, default=None, help="processes for counting chunks")
    t.add_argument("--quiet", action="store_true", help="no progress on stderr")
    t.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)

    for name, help_text in [
        ("encode", "print the token ids of a text"),
        ("show", "print a text with its token boundaries coloured, and bytes per token"),
    ]:
        e = sub.add_parser(name, help=help_text, description=help_text)
        e.add_argument("--tokenizer", required=True, type=Path, help="tokenizer JSON file")
        src = e.add_mutually_exclusive_group(required=True)
        src.add_argument("--text", help="the text")
        src.add_argument("--input", type=Path, metavar="FILE", help="read the text from a file")
        e.add_argument(
            "--allow-special",
            action="store_true",
            help="BPE: encode special-token text (e.g. <|endoftext|>) as the special token",
        )
        if name == "encode":
            e.add_argument("--json", action="store_true", help="print a JSON list")
            e.add_argument("--out", type=Path, help="write the ids to this file instead")
            e.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
        else:
            e.add_argument("--no-color", action="store_true", help="mark boundaries with '|'")

    d = sub.add_parser("decode", help="print the text of token ids", description="Ids to text.")
    d.add_argument("--tokenizer", required=True, type=Path, help="tokenizer JSON file")
    src = d.add_mutually_exclusive_group(required=True)
    src.add_argument("--ids", help='ids separated by spaces or commas, or a JSON list: "1 2 3"')
    src.add_argument("--input", type=Path, metavar="FILE", help="read the ids from a file")
    d.add_argument("--strict", action="store_true", help="fail on ids that do not form valid UTF-8")

    i = sub.add_parser(
        "import",
        help="read HF tokenizer files or a tiktoken rank file into our BPE JSON",
        description="Import a byte-level BPE: an HF tokenizer.json, vocab.json + merges.txt "
        "(or a folder holding them), or a tiktoken rank file.",
    )
    i.add_argument("--from", dest="source", required=True, type=Path, metavar="PATH")
    i.add_argument("--out", required=True, type=Path, help="tokenizer JSON file to write")
    i.add_argument(
        "--pattern", default="gpt4", help="rank files only: gpt4, gpt2, o200k or a regex"
    )
    i.add_argument(
        "--special-token",
        action="append",
        default=[],
        metavar="TEXT[=ID]",
        help="rank files only: a special token, with its id or after the ranks (repeatable)",
    )
    i.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    x = sub.add_parser(
        "export",
        help="write a BPE tokenizer as HF files or tiktoken files",
        description="Write tokenizer.json (+ vocab.json/merges.txt for the gpt2 pattern) for "
        "HF tokenizers, or a tiktoken rank file with tiktoken.json (pattern, special tokens).",
    )
    x.add_argument("--tokenizer", required=True, type=Path, help="tokenizer JSON file")
    x.add_argument("--format", choices=["hf", "tiktoken"], required=True)
    x.add_argument("--out", required=True, type=Path, help="folder to write the files in")
    x.add_argument(
        "--overwrite", action="store_true", help="replace files of the same names in --out"
    )
    return p


def _refuse_existing(out: Path | None, overwrite: bool) -> None:
    """An --out file that exists is kept unless --overwrite: checked before any work."""
    if out is not None and out.exists() and not overwrite:
        fail(f"--out {out} already exists; pass --overwrite to replace it, or choose another")


def _read_text(args: argparse.Namespace) -> str:
    """The text of --text or --input, which must be valid UTF-8."""
    from gpt_tokenizers.loading import read_text_file

    if args.input is not None:
        return read_text_file(args.input)
    text = str(args.text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # Python turns command-line bytes that are not UTF-8 into lone surrogates.
        fail(
            f"--text: character {exc.start} ({text[exc.start]!r}) is not valid text; expected "
            f"UTF-8 (the argument holds bytes of another encoding, or a lone surrogate)"
        )
    return text


def _parse_ids(raw: str, source: str) -> list[int]:
    raw = raw.strip()
    try:
        if raw.startswith("["):
            values = json.loads(raw)
            if not isinstance(values, list):
                raise ValueError
            return [int(v) for v in values]
        return [int(v) for v in raw.replace(",", " ").split()]
    except (ValueError, TypeError):
        fail(f"{source}: expected integer ids separated by spaces or commas, or a JSON list")


def _train(args: argparse.Namespace) -> None:
    from gpt_tokenizers.loading import train_tokenizer

    _refuse_existing(args.out, args.overwrite)
    start = time.perf_counter()
    tok = train_tokenizer(
        args.kind,
        args.input,
        args.vocab_size,
        pattern=args.pattern,
        special_tokens=args.special_token,
        bos=args.bos,
        eos=args.eos,
        unknown=args.unknown,
        verbose=not args.quiet,
        processes=args.processes,
    )
    tok.save(args.out)
    seconds = time.perf_counter() - start
    print(f"trained a {args.kind} tokenizer, vocab size {tok.vocab_size}, in {seconds:.1f}s")
    print(f"wrote {args.out}")


def _interchange(args: argparse.Namespace) -> None:
    from gpt_tokenizers import BPETokenizer, TokenizerError
    from gpt_tokenizers.interchange import export_bpe, import_bpe
    from gpt_tokenizers.loading import load_tokenizer

    if args.command == "import":
        _refuse_existing(args.out, args.overwrite)
        tok = import_bpe(args.source, args.pattern, args.special_token)
        tok.save(args.out)
        print(f"imported {tok!r} from {args.source}")
        print(f"wrote {args.out}")
        return
    loaded = load_tokenizer(args.tokenizer)
    if not isinstance(loaded, BPETokenizer):
        raise TokenizerError(
            f"{args.tokenizer}: --format {args.format} needs a BPE tokenizer, this one is "
            f"{type(loaded).__name__}"
        )
    written = export_bpe(loaded, args.format, args.out, overwrite=args.overwrite)
    print(f"wrote {', '.join(str(p) for p in written)}")


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with user_errors():
        if args.command == "train":
            _train(args)
            return
        if args.command in ("import", "export"):
            _interchange(args)
            return
        from gpt_tokenizers.atomic import write_text_atomic
        from gpt_tokenizers.loading import decode_ids, encode_text, load_tokenizer, read_text_file
        from gpt_tokenizers.render import describe, format_pieces, token_pieces

        tok = load_tokenizer(args.tokenizer)
        if args.command == "decode":
            if args.ids is not None:
                ids = _parse_ids(args.ids, "--ids")
            else:
                ids = _parse_ids(read_text_file(args.input), str(args.input))
            text = decode_ids(tok, ids, strict=args.strict)
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
            return
        if args.command == "encode":
            _refuse_existing(args.out, args.overwrite)
        text = _read_text(args)
        ids = encode_text(tok, text, args.allow_special)
        if args.command == "encode":
            rendered = json.dumps(ids) if args.json else " ".join(map(str, ids))
            if args.out is not None:
                write_text_atomic(args.out, rendered + "\n")
                print(f"wrote {len(ids)} ids to {args.out}")
            else:
                print(rendered)
            return
        color = not args.no_color and "NO_COLOR" not in os.environ
        print(format_pieces(token_pieces(tok, ids), color))
        print(describe(text, ids))
