"""Word-level tokenizer: the most frequent words (and punctuation, whitespace runs) plus <unk>."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import regex

from gpt_tokenizers._vocab import PieceVocab
from gpt_tokenizers.errors import TokenizerError

# Words, single punctuation marks and whitespace runs: decoding joins them back exactly.
WORD_PATTERN = regex.compile(r"\w+|[^\w\s]|\s+")


def split_words(text: str) -> list[str]:
    """The pieces a text is cut into before lookup."""
    return WORD_PATTERN.findall(text)


class WordTokenizer(PieceVocab):
    """Ids are words by falling frequency (ties alphabetical), then <unk>, <bos>, <eos>."""

    kind = "word"
    pieces_key = "words"

    @classmethod
    def from_text(
        cls,
        text: str | Iterable[str],
        vocab_size: int,
        bos: bool = False,
        eos: bool = False,
    ) -> WordTokenizer:
        """Keep the most frequent words so that the whole vocabulary has `vocab_size` ids."""
        reserved = 1 + int(bos) + int(eos)  # <unk> plus the enabled specials
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
            raise TokenizerError(f"vocab_size must be an int, got {vocab_size!r}")
        if vocab_size < reserved + 1:
            raise TokenizerError(
                f"vocab_size {vocab_size} is too small: need at least {reserved + 1} "
                f"(one word plus {reserved} special token(s))"
            )
        counts: Counter[str] = Counter()
        for part in [text] if isinstance(text, str) else text:
            counts.update(split_words(part))
        if not counts:
            raise TokenizerError("cannot build a word tokenizer from empty text")
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        words = [w for w, _ in ranked[: vocab_size - reserved]]
        return cls(words, "replace", bos, eos)

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Text to ids; words outside the vocabulary become <unk>."""
        return self._ids(split_words(text), add_bos, add_eos)

    def __repr__(self) -> str:
        return f"WordTokenizer(vocab_size={self.vocab_size})"
