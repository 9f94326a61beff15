"""Tokenizer files other tools read and write: HF files and tiktoken rank files, both ways.

`import_bpe` reads whichever a user has (a tokenizer.json, vocab.json + merges.txt, a
folder holding them, or a .tiktoken rank file with its pattern and special tokens);
`export_bpe` writes a folder of either kind. tiktoken's rank file cannot name its regex
or special tokens, so the export puts them in tiktoken.json beside it: what
`tiktoken.Encoding(name, pat_str=..., mergeable_ranks=..., special_tokens=...)` needs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from gpt_tokenizers.atomic import write_text_atomic
from gpt_tokenizers.bpe import BPETokenizer
from gpt_tokenizers.errors import TokenizerError
from gpt_tokenizers.hf_files import hf_file_names, import_hf_tokenizer, write_hf_files
from gpt_tokenizers.patterns import pattern_name

ExportFormat = Literal["hf", "tiktoken"]
RANK_FILE = "tokenizer.tiktoken"
TIKTOKEN_INFO = "tiktoken.json"


def parse_specials(items: Sequence[str]) -> list[str] | dict[str, int]:
    """`TEXT` items (ids after the ranks) or `TEXT=ID` items (ids as given), not mixed."""
    if not any("=" in s for s in items):
        return list(items)
    specials: dict[str, int] = {}
    for item in items:
        text, sep, idx = item.rpartition("=")
        if not sep or not text or not idx.isdigit():
            raise TokenizerError(
                f"special token {item!r}: give all as TEXT=ID (e.g. <|endoftext|>=100257) "
                "or all as TEXT"
            )
        specials[text] = int(idx)
    return specials


def import_bpe(
    source: str | os.PathLike[str], pattern: str = "gpt4", special_tokens: Sequence[str] = ()
) -> BPETokenizer:
    """A BPE tokenizer from HF files or a tiktoken rank file (`pattern` and `special_tokens`
    apply to a rank file only: HF files carry their own)."""
    p = Path(source)
    if not p.exists():
        raise FileNotFoundError(f"tokenizer source not found: {p}")
    if p.is_file() and p.suffix != ".json":
        return BPETokenizer.from_tiktoken_file(p, pattern, parse_specials(special_tokens))
    if p.name == "vocab.json":
        p = p.parent
    return import_hf_tokenizer(p)


def write_tiktoken_files(tok: BPETokenizer, folder: str | os.PathLike[str]) -> list[Path]:
    """tokenizer.tiktoken (ranks) + tiktoken.json (name, pat_str, special_tokens) in `folder`."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tok.save_tiktoken(out / RANK_FILE)
    info = {
        "name": f"gptkit-{pattern_name(tok.pattern) or 'custom'}-{tok.vocab_size}",
        "rank_file": RANK_FILE,
        "pat_str": tok.pattern,
        "special_tokens": tok.special_tokens,
    }
    write_text_atomic(out / TIKTOKEN_INFO, json.dumps(info, indent=2) + "\n")
    return [out / RANK_FILE, out / TIKTOKEN_INFO]


def export_bpe(
    tok: BPETokenizer,
    fmt: ExportFormat,
    folder: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write `tok` into `folder` as HF files or tiktoken files; returns the files written.

    A file of those names already in `folder` is refused before anything is written, unless
    `overwrite`; each file is written atomically (a crash leaves the old one or the new).
    """
    if fmt == "hf":
        names, write = hf_file_names(tok), write_hf_files
    elif fmt == "tiktoken":
        names, write = [RANK_FILE, TIKTOKEN_INFO], write_tiktoken_files
    else:
        raise TokenizerError(f"unknown export format {fmt!r} (expected hf or tiktoken)")
    existing = [name for name in names if (Path(folder) / name).exists()]
    if existing and not overwrite:
        raise TokenizerError(
            f"{folder} already holds {', '.join(existing)}; export with overwrite "
            "(--overwrite) to replace them, or into another folder"
        )
    return write(tok, folder)
