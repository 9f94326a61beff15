"""The two files a BPE tokenizer is stored in: our JSON (merges) and tiktoken rank files.

These functions turn a file's content into checked plain values (merges, vocab, specials)
and back; `BPETokenizer.save` / `load` / `save_tiktoken` / `from_tiktoken_file` build on
them. Every error names the file and the key or line that is wrong.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpt_tokenizers._json import FORMAT_VERSION, field
from gpt_tokenizers.errors import TokenizerError
from gpt_tokenizers.patterns import pattern_name, resolve_pattern


@dataclass(frozen=True)
class BPEFields:
    """The checked content of a BPE JSON object."""

    merges: list[tuple[int, int]]
    pattern: str
    special_tokens: dict[str, int]
    byte_order: list[int] | None  # id i is the byte byte_order[i]; None: the identity
    vocab_size: int | None  # as declared in the file, checked against the merges by the caller


def bpe_to_dict(
    vocab: Sequence[bytes],
    merges: Sequence[tuple[int, int]],
    pattern: str,
    special_tokens: Mapping[str, int],
    vocab_size: int,
) -> dict[str, Any]:
    """The JSON-able form of a BPE tokenizer (see the package README for the format)."""
    obj: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "type": "bpe",
        "pattern_name": pattern_name(pattern),
        "pattern": pattern,
        "vocab_size": vocab_size,
        "special_tokens": dict(special_tokens),
    }
    byte_order = [t[0] for t in vocab[:256]]
    if byte_order != list(range(256)):
        obj["byte_order"] = byte_order
    obj["merges"] = [list(m) for m in merges]
    return obj


def bpe_fields(obj: dict[str, Any], source: str) -> BPEFields:
    """Check a BPE JSON object key by key; errors name `source` and the bad key or entry."""
    pattern = field(obj, "pattern", str, source)
    try:
        pattern = resolve_pattern(pattern)
    except TokenizerError as exc:
        raise TokenizerError(f"{source}: 'pattern': {exc}") from None
    merges: list[tuple[int, int]] = []
    for k, m in enumerate(field(obj, "merges", list, source)):
        ok = (
            isinstance(m, list)
            and len(m) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in m)
        )
        if not ok:
            raise TokenizerError(
                f"{source}: 'merges'[{k}] must be a pair of integer ids, got {m!r}"
            )
        merges.append((m[0], m[1]))
    specials = obj.get("special_tokens", {})
    if not isinstance(specials, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in specials.values()
    ):
        raise TokenizerError(f"{source}: 'special_tokens' must map token text to integer ids")
    byte_order = obj.get("byte_order")
    if byte_order is not None and (
        not isinstance(byte_order, list) or sorted(byte_order) != list(range(256))
    ):
        raise TokenizerError(
            f"{source}: 'byte_order' must list each of the 256 byte values exactly once"
        )
    return BPEFields(merges, pattern, specials, byte_order, obj.get("vocab_size"))


def rank_file_text(vocab: Sequence[bytes]) -> str:
    """A tiktoken rank file: `base64(token bytes) rank` per line, in rank order."""
    return "".join(f"{base64.b64encode(t).decode('ascii')} {i}\n" for i, t in enumerate(vocab))


def read_rank_file(path: str | os.PathLike[str]) -> list[bytes]:
    """The token bytes of a tiktoken rank file, in rank order, checked to be a byte-level BPE."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"tiktoken rank file not found: {p}")
    by_rank: dict[int, bytes] = {}
    with open(p, "rb") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.split()
            try:
                if len(parts) != 2:
                    raise ValueError
                token, rank = base64.b64decode(parts[0], validate=True), int(parts[1])
            except (ValueError, binascii.Error):
                raise TokenizerError(
                    f"{p}:{lineno}: expected 'base64-token rank', got {line[:80]!r}"
                ) from None
            if rank in by_rank:
                raise TokenizerError(f"{p}:{lineno}: rank {rank} appears twice")
            by_rank[rank] = token
    n = len(by_rank)
    if n < 256:
        raise TokenizerError(f"{p}: has {n} ranks; a byte-level BPE needs at least 256")
    missing = next((r for r in range(n) if r not in by_rank), None)
    if missing is not None:
        raise TokenizerError(f"{p}: ranks must be 0..{n - 1} without gaps; {missing} is missing")
    vocab = [by_rank[r] for r in range(n)]
    if sorted(t[0] for t in vocab[:256] if len(t) == 1) != list(range(256)):
        raise TokenizerError(f"{p}: ranks 0..255 must be the 256 single bytes")
    return vocab
