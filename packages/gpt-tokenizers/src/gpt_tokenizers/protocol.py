"""The small interface every tokenizer here shares, so training code works with any of them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class Tokenizer(Protocol):
    """encode / decode / vocab_size / eot_id / save, implemented by BPE, char and word."""

    @property
    def vocab_size(self) -> int:
        """Number of ids (one more than the largest id)."""
        ...

    @property
    def eot_id(self) -> int | None:
        """The document separator id ("<|endoftext|>" for BPE, EOS for char/word), if any."""
        ...

    def encode(self, text: str) -> list[int]:
        """Text to ids."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Ids to text."""
        ...

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write one JSON file that `load_tokenizer` reads back."""
        ...
