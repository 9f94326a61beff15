"""gpt_tokenizers: byte-level BPE (trainer, tiktoken-speed encoder), char and word tokenizers.

No torch: this package installs and runs on its own.
"""

from gpt_tokenizers.atomic import atomic_path, write_text_atomic
from gpt_tokenizers.bpe import BPETokenizer
from gpt_tokenizers.char import CharTokenizer
from gpt_tokenizers.errors import TokenizerError
from gpt_tokenizers.loading import decode_ids, encode_text, load_tokenizer, train_tokenizer
from gpt_tokenizers.patterns import GPT2_PATTERN, GPT4_PATTERN, O200K_PATTERN, PATTERNS
from gpt_tokenizers.protocol import Tokenizer
from gpt_tokenizers.render import Piece, format_pieces, token_pieces
from gpt_tokenizers.word import WordTokenizer

__all__ = [
    "GPT2_PATTERN",
    "GPT4_PATTERN",
    "O200K_PATTERN",
    "PATTERNS",
    "BPETokenizer",
    "CharTokenizer",
    "Piece",
    "Tokenizer",
    "TokenizerError",
    "WordTokenizer",
    "atomic_path",
    "decode_ids",
    "encode_text",
    "format_pieces",
    "load_tokenizer",
    "token_pieces",
    "train_tokenizer",
    "write_text_atomic",
]
