"""Shared machinery of the char and word tokenizers: a list of pieces plus optional specials."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, Literal, Self, get_args

from gpt_tokenizers._json import FORMAT_VERSION, field, read_json_object
from gpt_tokenizers.atomic import write_text_atomic
from gpt_tokenizers.errors import TokenizerError

Unknown = Literal["error", "replace", "skip"]
UNK, BOS, EOS = "<unk>", "<bos>", "<eos>"


class PieceVocab:
    """Ids 0..n-1 are pieces (chars or words); then <unk> / <bos> / <eos> when enabled."""

    kind = "pieces"
    pieces_key = "pieces"

    def __init__(
        self,
        pieces: Sequence[str],
        unknown: Unknown = "error",
        bos: bool = False,
        eos: bool = False,
    ) -> None:
        if unknown not in get_args(Unknown):
            raise TokenizerError(
                f"unknown-piece policy {unknown!r} is not one of {list(get_args(Unknown))}"
            )
        self._pieces = list(pieces)
        self._index = {p: i for i, p in enumerate(self._pieces)}
        if len(self._index) != len(self._pieces):
            raise TokenizerError(f"{self.kind} vocabulary lists a {self.kind} more than once")
        self._unknown: Unknown = unknown
        self._bos, self._eos = bos, eos
        specials = ([UNK] if unknown == "replace" else []) + ([BOS] if bos else [])
        specials += [EOS] if eos else []
        self._special = {s: len(self._pieces) + i for i, s in enumerate(specials)}
        self._decode_table = self._pieces + specials

    @property
    def vocab_size(self) -> int:
        """Pieces plus enabled special tokens."""
        return len(self._decode_table)

    @property
    def eot_id(self) -> int | None:
        """The EOS id when EOS is enabled (used as the document separator)."""
        return self._special.get(EOS)

    @property
    def bos_id(self) -> int | None:
        """The BOS id when BOS is enabled."""
        return self._special.get(BOS)

    @property
    def unk_id(self) -> int | None:
        """The <unk> id when the unknown policy is "replace"."""
        return self._special.get(UNK)

    @property
    def special_tokens(self) -> dict[str, int]:
        """Special token name -> id."""
        return dict(self._special)

    def _ids(self, pieces: Sequence[str], add_bos: bool, add_eos: bool) -> list[int]:
        index = self._index
        ids: list[int] = []
        if add_bos:
            ids.append(self._require(BOS))
        get = index.get
        for pos, piece in enumerate(pieces):
            i = get(piece)
            if i is not None:
                ids.append(i)
            elif self._unknown == "replace":
                ids.append(self._special[UNK])
            elif self._unknown == "error":
                raise TokenizerError(
                    f"{self.kind} {piece!r} (piece {pos}) is not in the vocabulary; build the "
                    f"tokenizer with unknown='replace' or 'skip' to accept it"
                )
        if add_eos:
            ids.append(self._require(EOS))
        return ids

    def _require(self, name: str) -> int:
        if name not in self._special:
            raise TokenizerError(f"this tokenizer has no {name} token (build it with that enabled)")
        return self._special[name]

    def decode(self, ids: Sequence[int]) -> str:
        """Ids to text; special ids show as their names (e.g. "<eos>")."""
        table = self._decode_table
        n = len(table)
        for i in ids:
            if not 0 <= i < n:
                raise TokenizerError(f"unknown token id {i} (vocab size {n})")
        return "".join([table[i] for i in ids])

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form written by `save`."""
        return {
            "format_version": FORMAT_VERSION,
            "type": self.kind,
            "unknown": self._unknown,
            "bos": self._bos,
            "eos": self._eos,
            "vocab_size": self.vocab_size,
            "special_tokens": self._special,
            self.pieces_key: self._pieces,
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write one JSON file (pieces one per line) that `load` reads back."""
        obj = self.to_dict()
        head = {k: v for k, v in obj.items() if k != self.pieces_key}
        body = json.dumps(head, indent=2, ensure_ascii=False)[:-2]
        lines = ",\n".join("    " + json.dumps(p, ensure_ascii=False) for p in self._pieces)
        write_text_atomic(path, f'{body},\n  "{self.pieces_key}": [\n{lines}\n  ]\n}}\n')

    @classmethod
    def _parse(cls, obj: dict[str, Any], source: str) -> dict[str, Any]:
        if obj.get("type") != cls.kind:
            raise TokenizerError(f"{source}: is a {obj.get('type')!r} tokenizer, not {cls.kind!r}")
        pieces = field(obj, cls.pieces_key, list, source)
        for i, p in enumerate(pieces):
            if not isinstance(p, str) or not p:
                raise TokenizerError(
                    f"{source}: {cls.pieces_key!r}[{i}] must be a non-empty string, got {p!r}"
                )
        unknown = field(obj, "unknown", str, source)
        if unknown not in get_args(Unknown):
            raise TokenizerError(
                f"{source}: 'unknown' is {unknown!r}, expected one of {list(get_args(Unknown))}"
            )
        return {
            "pieces": pieces,
            "unknown": unknown,
            "bos": field(obj, "bos", bool, source),
            "eos": field(obj, "eos", bool, source),
        }

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Read a file written by `save`, naming the file and key of anything wrong in it."""
        obj = read_json_object(path)
        args = cls._parse(obj, str(path))
        try:
            tok = cls(args["pieces"], args["unknown"], args["bos"], args["eos"])
        except TokenizerError as exc:
            raise TokenizerError(f"{path}: {exc}") from None
        declared = obj.get("vocab_size")
        if isinstance(declared, int) and declared != tok.vocab_size:
            raise TokenizerError(
                f"{path}: 'vocab_size' is {declared} but the file gives {tok.vocab_size}"
            )
        return tok
