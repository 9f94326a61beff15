"""`load_tokenizer`: read any saved tokenizer, whatever its type."""

from __future__ import annotations

import os

from gpt_tokenizers._json import read_json_object
from gpt_tokenizers.bpe import BPETokenizer
from gpt_tokenizers.char import CharTokenizer
from gpt_tokenizers.errors import TokenizerError
from gpt_tokenizers.protocol import Tokenizer
from gpt_tokenizers.word import WordTokenizer

_TYPES: dict[str, type[BPETokenizer] | type[CharTokenizer] | type[WordTokenizer]] = {
    "bpe": BPETokenizer,
    "char": CharTokenizer,
    "word": WordTokenizer,
}


def load_tokenizer(path: str | os.PathLike[str]) -> Tokenizer:
    """Load a tokenizer JSON file, dispatching on its "type" field (bpe, char or word)."""
    kind = read_json_object(path)["type"]
    cls = _TYPES.get(kind)
    if cls is None:
        raise TokenizerError(f"{path}: unknown tokenizer type {kind!r} (expected {sorted(_TYPES)})")
    return cls.load(path)
