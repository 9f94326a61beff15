"""Byte-level BPE: training, tiktoken-speed encoding, JSON and tiktoken rank files.

Ids 0..255 are single bytes, merge k creates id 256 + k, and special tokens come after the
merges. Encoding goes through a `tiktoken.Encoding` built from these ranks; `reference.py`
holds the same algorithms (encoding and training) in plain Python, and `bpe_files.py` the
JSON and tiktoken rank file formats.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from itertools import chain
from typing import Any, Literal, TypeAlias

import tiktoken

from gpt_tokenizers import reference
from gpt_tokenizers._json import dumps_compact_lists, read_json_object
from gpt_tokenizers.atomic import write_text_atomic
from gpt_tokenizers.bpe_files import bpe_fields, bpe_to_dict, rank_file_text, read_rank_file
from gpt_tokenizers.counting import count_files, count_texts, default_processes
from gpt_tokenizers.errors import TokenizerError
from gpt_tokenizers.patterns import pattern_name, resolve_pattern
from gpt_tokenizers.pretokenize import safe_pieces
from gpt_tokenizers.trainer import check_specials, train_bpe

EOT = "<|endoftext|>"
# Texts at least this long are cut at safe line breaks and encoded on several threads.
PARALLEL_ENCODE_CHARS = 1 << 16
AllowedSpecial: TypeAlias = Literal["all"] | AbstractSet[str]
DisallowedSpecial: TypeAlias = Literal["all"] | Collection[str]


class BPETokenizer:
    """A byte-level BPE tokenizer (see the module docstring for the id layout)."""

    def __init__(
        self,
        merges: Sequence[tuple[int, int]] = (),
        pattern: str = "gpt4",
        special_tokens: Sequence[str] | Mapping[str, int] = (),
    ) -> None:
        vocab = [bytes([i]) for i in range(256)]
        for k, (a, b) in enumerate(merges):
            if not (0 <= a < 256 + k and 0 <= b < 256 + k):
                raise TokenizerError(
                    f"merge {k} ({a}, {b}) refers to an id that does not exist yet "
                    f"(ids must be below {256 + k})"
                )
            vocab.append(vocab[a] + vocab[b])
        self._setup(vocab, [(a, b) for a, b in merges], resolve_pattern(pattern), special_tokens)

    def _setup(
        self,
        vocab: list[bytes],
        merges: list[tuple[int, int]] | None,
        pattern: str,
        special_tokens: Sequence[str] | Mapping[str, int],
    ) -> None:
        self._vocab = vocab  # id -> bytes for every non-special id
        self._merges = merges  # None until needed for a tokenizer read from a rank file
        self._pattern = pattern
        if isinstance(special_tokens, Mapping):
            special = dict(special_tokens)
        else:
            names = check_specials(special_tokens)
            special = {s: len(vocab) + i for i, s in enumerate(names)}
        used: dict[int, str] = {}
        for name, idx in special.items():
            if not isinstance(idx, int) or isinstance(idx, bool) or idx < len(vocab):
                raise TokenizerError(
                    f"special token {name!r} has id {idx!r}; special ids must be integers "
                    f">= {len(vocab)} (after the byte and merge tokens)"
                )
            if idx in used:
                raise TokenizerError(f"special tokens {used[idx]!r} and {name!r} share id {idx}")
            used[idx] = name
        self._special = special
        self._special_by_id = used
        # tiktoken needs one rank per byte string: a duplicate keeps its first (lowest) id.
        ranks: dict[bytes, int] = {}
        for i, token in enumerate(vocab):
            ranks.setdefault(token, i)
        self._ranks = ranks
        self._encoding: tiktoken.Encoding | None = None
        # Cutting a long text at safe line breaks leaves its chunks unchanged for the built-in
        # patterns (see pretokenize.py), and no special token can straddle a cut.
        self._threads = default_processes()
        self._cuttable = pattern_name(pattern) is not None and not any("\n" in s for s in special)

    # ---- training -------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        texts: str | Iterable[str],
        vocab_size: int,
        pattern: str = "gpt4",
        special_tokens: Sequence[str] = (),
        verbose: bool = False,
        processes: int | None = None,
    ) -> BPETokenizer:
        """Train on a string or any iterable of strings (each split on its own, streamed).

        `vocab_size` counts everything: 256 bytes + merges + special tokens. Special-token
        text in the input is cut out before counting, so no merge ever produces it.
        """
        merges, pat, specials = train_bpe(
            count_texts, texts, vocab_size, pattern, special_tokens, verbose, processes
        )
        return cls(merges, pat, specials)

    @classmethod
    def train_files(
        cls,
        paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
        vocab_size: int,
        pattern: str = "gpt4",
        special_tokens: Sequence[str] = (),
        verbose: bool = False,
        processes: int | None = None,
    ) -> BPETokenizer:
        """Train on UTF-8 text files, read in pieces by several processes (see `train`)."""
        path_list = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        if not path_list:
            raise TokenizerError("no training files given")
        merges, pat, specials = train_bpe(
            count_files, path_list, vocab_size, pattern, special_tokens, verbose, processes
        )
        return cls(merges, pat, specials)

    # ---- properties -----------------------------------------------------------------------

    @property
    def merges(self) -> list[tuple[int, int]]:
        """(left id, right id) in merge order; merge k created id 256 + k."""
        if self._merges is None:
            try:
                self._merges = reference.recover_merges(self._vocab, self._ranks)
            except ValueError as exc:
                raise TokenizerError(f"cannot recover merges from the ranks: {exc}") from None
        return list(self._merges)

    @property
    def pattern(self) -> str:
        """The pre-split regex."""
        return self._pattern

    @property
    def special_tokens(self) -> dict[str, int]:
        """Special token text -> id."""
        return dict(self._special)

    @property
    def vocab_size(self) -> int:
        """One more than the largest id (bytes, merges and special tokens)."""
        return max(len(self._vocab), max(self._special.values(), default=-1) + 1)

    @property
    def eot_id(self) -> int | None:
        """Id of "<|endoftext|>" when it is a special token."""
        return self._special.get(EOT)

    @property
    def encoding(self) -> tiktoken.Encoding:
        """The tiktoken.Encoding used for fast encoding (built on first use)."""
        if self._encoding is None:
            name = pattern_name(self._pattern) or "custom"
            self._encoding = tiktoken.Encoding(
                f"gptkit-{name}-{len(self._vocab)}",
                pat_str=self._pattern,
                mergeable_ranks=self._ranks,
                special_tokens=self._special,
            )
        return self._encoding

    @property
    def num_threads(self) -> int:
        """Threads `encode` uses for a text of at least 64K characters (1: never split)."""
        return self._threads

    @num_threads.setter
    def num_threads(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TokenizerError(f"num_threads must be a positive int, got {value!r}")
        self._threads = value

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes of one token (a special token gives its UTF-8 text)."""
        if 0 <= token_id < len(self._vocab):
            return self._vocab[token_id]
        name = self._special_by_id.get(token_id)
        if name is None:
            raise TokenizerError(f"unknown token id {token_id} (vocab size {self.vocab_size})")
        return name.encode("utf-8")

    # ---- encoding -------------------------------------------------------------------------

    def _check_special_args(self, allowed: AllowedSpecial, disallowed: DisallowedSpecial) -> None:
        for arg in (allowed, disallowed):
            if arg != "all":
                unknown = sorted(set(arg) - self._special.keys())
                if unknown:
                    raise TokenizerError(
                        f"not special tokens of this tokenizer: {unknown} "
                        f"(it has {sorted(self._special)})"
                    )

    def _special_error(self, text: str, allowed: AllowedSpecial) -> TokenizerError:
        found = [s for s in self._special if s in text and (allowed == "all" or s not in allowed)]
        name = found[0] if found else "a special token"
        return TokenizerError(
            f"text contains the special token {name!r}; pass allowed_special={{{name!r}}} "
            f"(or 'all') to encode it as that token, or use encode_ordinary to encode it as "
            f"plain text"
        )

    def encode(
        self,
        text: str,
        allowed_special: AllowedSpecial = frozenset(),
        disallowed_special: DisallowedSpecial = "all",
    ) -> list[int]:
        """Encode text; special-token text raises unless allowed (tiktoken's semantics)."""
        try:
            if len(text) >= PARALLEL_ENCODE_CHARS and self._cuttable and self._threads > 1:
                return self._encode_parallel(text, allowed_special, disallowed_special)
            return self.encoding.encode(
                text, allowed_special=allowed_special, disallowed_special=disallowed_special
            )
        except ValueError:
            self._check_special_args(allowed_special, disallowed_special)
            raise self._special_error(text, allowed_special) from None

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode text, treating special-token text as plain text."""
        if len(text) >= PARALLEL_ENCODE_CHARS and self._cuttable and self._threads > 1:
            return self._encode_parallel(text, frozenset(), ())
        return self.encoding.encode_ordinary(text)

    def _encode_parallel(
        self, text: str, allowed: AllowedSpecial, disallowed: DisallowedSpecial
    ) -> list[int]:
        """Encode a long text as pieces on several threads (tiktoken releases the GIL)."""
        pieces = list(safe_pieces(text, len(text) // (2 * self._threads) + 1))
        parts = self.encoding.encode_batch(
            pieces,
            num_threads=self._threads,
            allowed_special=allowed,
            disallowed_special=disallowed,
        )
        return list(chain.from_iterable(parts))

    def encode_batch(
        self,
        texts: Sequence[str],
        num_threads: int = 8,
        allowed_special: AllowedSpecial = frozenset(),
        disallowed_special: DisallowedSpecial = "all",
    ) -> list[list[int]]:
        """Encode many texts on several threads (tiktoken releases the GIL)."""
        try:
            return self.encoding.encode_batch(
                list(texts),
                num_threads=num_threads,
                allowed_special=allowed_special,
                disallowed_special=disallowed_special,
            )
        except ValueError:
            self._check_special_args(allowed_special, disallowed_special)
            raise self._special_error("".join(texts), allowed_special) from None

    def encode_reference(
        self, text: str, allowed_special: AllowedSpecial = frozenset()
    ) -> list[int]:
        """The pure-Python encoder (slow, readable); gives the same ids as `encode`."""
        allowed = set(self._special) if allowed_special == "all" else set(allowed_special)
        self._check_special_args(allowed, ())
        blocked = [s for s in self._special if s not in allowed and s in text]
        if blocked:
            raise self._special_error(text, allowed)
        return reference.encode(text, self._pattern, self._ranks, self._special, allowed)

    # ---- decoding -------------------------------------------------------------------------

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """The raw bytes of a sequence of ids (may end in the middle of a UTF-8 character)."""
        vocab = self._vocab
        try:
            if not self._special_by_id and (not ids or min(ids) >= 0):
                return b"".join([vocab[i] for i in ids])
        except (IndexError, TypeError):
            pass  # fall through to the careful path, which names the bad id
        return b"".join([self.token_bytes(int(i)) for i in ids])

    def decode(self, ids: Sequence[int], errors: str = "replace") -> str:
        """Decode ids to text; bytes that are not valid UTF-8 become U+FFFD unless
        errors="strict", which raises a TokenizerError instead."""
        data = self.decode_bytes(ids)
        try:
            return data.decode("utf-8", errors=errors)
        except UnicodeDecodeError as exc:
            raise TokenizerError(
                f"ids do not decode to valid UTF-8 (byte {exc.start}: {exc.reason}); "
                f"use errors='replace' or decode_bytes"
            ) from None

    # ---- files ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form written by `save`."""
        return bpe_to_dict(self._vocab, self.merges, self._pattern, self._special, self.vocab_size)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the tokenizer as one human-readable JSON file (merges one per line)."""
        write_text_atomic(path, dumps_compact_lists(self.to_dict(), "merges"))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BPETokenizer:
        """Read a file written by `save`, checking every field."""
        obj = read_json_object(path)
        if obj["type"] != "bpe":
            raise TokenizerError(
                f"{path}: is a {obj['type']!r} tokenizer, not 'bpe' (use load_tokenizer)"
            )
        return cls.from_dict(obj, source=str(path))

    @classmethod
    def from_dict(cls, obj: dict[str, Any], source: str = "tokenizer") -> BPETokenizer:
        """Build from the `to_dict` form, with errors naming the bad key or entry."""
        f = bpe_fields(obj, source)
        try:
            tok = cls(f.merges, f.pattern, f.special_tokens)
            if f.byte_order is not None:
                vocab = [bytes([b]) for b in f.byte_order]
                for a, b in f.merges:
                    vocab.append(vocab[a] + vocab[b])
                tok._setup(vocab, f.merges, f.pattern, f.special_tokens)
        except TokenizerError as exc:
            raise TokenizerError(f"{source}: {exc}") from None
        if f.vocab_size is not None and f.vocab_size != tok.vocab_size:
            raise TokenizerError(
                f"{source}: 'vocab_size' is {f.vocab_size} but the merges and special tokens "
                f"give {tok.vocab_size}"
            )
        return tok

    def save_tiktoken(self, path: str | os.PathLike[str]) -> None:
        """Write a tiktoken rank file: `base64(token bytes) rank` per line, in rank order.

        Special tokens are not part of that format; pass them again when importing.
        """
        write_text_atomic(path, rank_file_text(self._vocab))

    @classmethod
    def from_tiktoken_file(
        cls,
        path: str | os.PathLike[str],
        pattern: str = "gpt4",
        special_tokens: Sequence[str] | Mapping[str, int] = (),
    ) -> BPETokenizer:
        """Read a tiktoken rank file (e.g. cl100k_base.tiktoken with pattern="gpt4",
        o200k_base.tiktoken with pattern="o200k"). Special tokens, given as a list, get the
        ids after the ranks; a mapping keeps the ids given (e.g. {"<|endoftext|>": 100257})."""
        tok = cls.__new__(cls)
        tok._setup(read_rank_file(path), None, resolve_pattern(pattern), special_tokens)
        return tok

    def __repr__(self) -> str:
        name = pattern_name(self._pattern) or "custom"
        return (
            f"BPETokenizer(vocab_size={self.vocab_size}, pattern={name!r}, "
            f"special_tokens={sorted(self._special)})"
        )
