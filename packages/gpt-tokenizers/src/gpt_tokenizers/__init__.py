"""gpt_tokenizers: byte-level BPE (trainer, tiktoken-speed encoder), char and word tokenizers.

No torch: this package installs and runs on its own.
"""

from gpt_tokenizers.bpe import BPETokenizer
from gpt_tokenizers.char import CharTokenizer
from gpt_tokenizers.errors import TokenizerError
from gpt_tokenizers.loading import load_tokenizer
from gpt_tokenizers.patterns import GPT2_PATTERN, GPT4_PATTERN, O200K_PATTERN, PATTERNS
from gpt_tokenizers.protocol import Tokenizer
from gpt_tokenizers.word import WordTokenizer

__all__ = [
    "GPT2_PATTERN",
    "GPT4_PATTERN",
    "O200K_PATTERN",
    "PATTERNS",
    "BPETokenizer",
    "CharTokenizer",
    "Tokenizer",
    "TokenizerError",
    "WordTokenizer",
    "load_tokenizer",
]
