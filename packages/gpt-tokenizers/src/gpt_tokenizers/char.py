"""Character-level tokenizer: one id per character seen in the corpus."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gpt_tokenizers._vocab import PieceVocab, Unknown
from gpt_tokenizers.errors import TokenizerError


class CharTokenizer(PieceVocab):
    """Ids are the corpus's characters in sorted order, then <unk>/<bos>/<eos> when enabled.

    unknown: what `encode` does with a character not in the vocabulary: "error" (raise),
    "replace" (the <unk> id) or "skip" (drop it).
    """

    kind = "char"
    pieces_key = "chars"

    @classmethod
    def from_text(
        cls,
        text: str | Iterable[str],
        unknown: Unknown = "error",
        bos: bool = False,
        eos: bool = False,
    ) -> CharTokenizer:
        """Build from a corpus (a string or an iterable of strings)."""
        chars: set[str] = set()
        for part in [text] if isinstance(text, str) else text:
            chars.update(part)
        if not chars:
            raise TokenizerError("cannot build a character tokenizer from empty text")
        return cls(sorted(chars), unknown, bos, eos)

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Text to ids, optionally framed by BOS / EOS."""
        return self._ids(text, add_bos, add_eos)

    @classmethod
    def _parse(cls, obj: dict[str, Any], source: str) -> dict[str, Any]:
        args = super()._parse(obj, source)
        for i, c in enumerate(args["pieces"]):
            if len(c) != 1:
                raise TokenizerError(f"{source}: 'chars'[{i}] must be one character, got {c!r}")
        return args

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size}, unknown={self._unknown!r})"
