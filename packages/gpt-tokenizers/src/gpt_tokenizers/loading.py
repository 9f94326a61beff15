"""Any tokenizer, whatever its type: load one, train one by kind, encode and decode.

The commands (`uv run tokenizer`) and data preparation go through these so that they need
no branch per tokenizer type.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from gpt_tokenizers._json import read_json_object
from gpt_tokenizers._vocab import Unknown
from gpt_tokenizers.bpe import BPETokenizer
from gpt_tokenizers.char import CharTokenizer
from gpt_tokenizers.errors import TokenizerError
from gpt_tokenizers.hf_files import read_hf_file
from gpt_tokenizers.protocol import Tokenizer
from gpt_tokenizers.word import WordTokenizer

Kind = Literal["bpe", "char", "word"]
_TYPES: dict[str, type[BPETokenizer] | type[CharTokenizer] | type[WordTokenizer]] = {
    "bpe": BPETokenizer,
    "char": CharTokenizer,
    "word": WordTokenizer,
}


def tokenizer_kind(tok: Tokenizer) -> str:
    """The "type" a tokenizer is saved under (bpe, char or word), or its class name."""
    return next((k for k, cls in _TYPES.items() if isinstance(tok, cls)), type(tok).__name__)


def load_tokenizer(path: str | os.PathLike[str]) -> Tokenizer:
    """Load a tokenizer JSON file, dispatching on its "type" field (bpe, char or word).

    An HF byte-level BPE file (tokenizer.json, or vocab.json with merges.txt beside it) is
    imported too, so GPT-2's tokenizer files work wherever a tokenizer path is asked for.
    """
    hf = read_hf_file(path)
    if hf is not None:
        return hf
    kind = read_json_object(path)["type"]
    cls = _TYPES.get(kind)
    if cls is None:
        raise TokenizerError(f"{path}: unknown tokenizer type {kind!r} (expected {sorted(_TYPES)})")
    return cls.load(path)


def train_tokenizer(
    kind: Kind,
    paths: Sequence[str | os.PathLike[str]],
    vocab_size: int | None = None,
    pattern: str = "gpt4",
    special_tokens: Sequence[str] = (),
    bos: bool = False,
    eos: bool = False,
    unknown: Unknown = "error",
    verbose: bool = False,
    processes: int | None = None,
) -> Tokenizer:
    """Train a `kind` tokenizer on UTF-8 files. bpe: `pattern`, `special_tokens`, `processes`;
    char: `unknown`; char and word: `bos`, `eos`. bpe and word need `vocab_size`."""
    if kind not in _TYPES:
        raise TokenizerError(f"unknown tokenizer kind {kind!r} (expected {sorted(_TYPES)})")
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"input file not found: {path}")
    texts = (read_text_file(p) for p in paths)
    if kind == "char":
        return CharTokenizer.from_text(texts, unknown=unknown, bos=bos, eos=eos)
    if vocab_size is None:
        raise TokenizerError(f"a {kind} tokenizer needs a vocabulary size (--vocab-size N)")
    if kind == "bpe":
        return BPETokenizer.train_files(
            paths, vocab_size, pattern, special_tokens, verbose=verbose, processes=processes
        )
    return WordTokenizer.from_text(texts, vocab_size, bos=bos, eos=eos)


def read_text_file(path: str | os.PathLike[str]) -> str:
    """The text of a UTF-8 file; a missing file or bytes that are not UTF-8 raise an error
    naming the file (and the first bad byte)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TokenizerError(
            f"{path}: not valid UTF-8 at byte {exc.start}: {exc.reason} (expected a UTF-8 "
            f"text file)"
        ) from None


def encode_text(tok: Tokenizer, text: str, allow_special: bool = False) -> list[int]:
    """Ids of `text`; `allow_special` (BPE) encodes special-token text as the special token,
    otherwise such text raises a TokenizerError."""
    if isinstance(tok, BPETokenizer):
        return tok.encode(text, allowed_special="all" if allow_special else frozenset())
    return tok.encode(text)


def decode_ids(tok: Tokenizer, ids: Sequence[int], strict: bool = False) -> str:
    """Text of `ids`; `strict` (BPE) raises on ids that do not form valid UTF-8 instead of
    showing U+FFFD."""
    if isinstance(tok, BPETokenizer):
        return tok.decode(ids, errors="strict" if strict else "replace")
    return tok.decode(ids)
