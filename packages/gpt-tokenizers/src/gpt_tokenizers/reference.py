"""A readable pure-Python BPE encoder, the specification the fast tiktoken path is tested against.

Algorithm (the one tiktoken implements in Rust): split the text with the pattern; for each
chunk, if its bytes are a token, that is the answer; otherwise start from single bytes and
repeatedly join the adjacent pair whose joined bytes have the lowest rank (leftmost on a
tie) until no adjacent pair joins into a token.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet

import regex


def encode_chunk(
    chunk: bytes, ranks: Mapping[bytes, int], max_rank: int | None = None
) -> list[bytes]:
    """BPE one chunk into token byte strings, joining only pairs ranked below `max_rank`."""
    if max_rank is None and chunk in ranks:
        return [chunk]
    parts = [chunk[i : i + 1] for i in range(len(chunk))]
    while len(parts) > 1:
        best_rank, best_i = None, -1
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is None or (max_rank is not None and rank >= max_rank):
                continue
            if best_rank is None or rank < best_rank:
                best_rank, best_i = rank, i
        if best_rank is None:
            break
        parts[best_i : best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    return parts


def encode_ordinary(text: str, pattern: str, ranks: Mapping[bytes, int]) -> list[int]:
    """Encode text with no special tokens."""
    ids: list[int] = []
    for chunk in regex.findall(pattern, text):
        ids.extend(ranks[part] for part in encode_chunk(chunk.encode("utf-8"), ranks))
    return ids


def encode(
    text: str,
    pattern: str,
    ranks: Mapping[bytes, int],
    special_tokens: Mapping[str, int],
    allowed_special: AbstractSet[str] = frozenset(),
) -> list[int]:
    """Encode text; occurrences of the allowed special tokens become their ids."""
    if not allowed_special:
        return encode_ordinary(text, pattern, ranks)
    # Longest first, so that a special token containing another wins at the same position.
    alternatives = sorted(allowed_special, key=len, reverse=True)
    special_re = regex.compile("|".join(regex.escape(s) for s in alternatives))
    ids: list[int] = []
    start = 0
    for m in special_re.finditer(text):
        ids.extend(encode_ordinary(text[start : m.start()], pattern, ranks))
        ids.append(special_tokens[m.group()])
        start = m.end()
    ids.extend(encode_ordinary(text[start:], pattern, ranks))
    return ids


def recover_merges(vocab: list[bytes], ranks: Mapping[bytes, int]) -> list[tuple[int, int]]:
    """The merge that made each multi-byte token, from ranks alone (a rank file has no merges).

    Token `rank` is BPE-encoded with only lower-ranked tokens allowed: that stops with exactly
    two parts, the pair whose merge created it.
    """
    merges: list[tuple[int, int]] = []
    for rank in range(256, len(vocab)):
        token = vocab[rank]
        # A duplicate (the same bytes made twice by training) is split like its first copy.
        limit = min(rank, ranks.get(token, rank))
        parts = encode_chunk(token, ranks, max_rank=limit)
        if len(parts) != 2:
            raise ValueError(
                f"token {rank} ({token!r}) is not the merge of two lower-ranked tokens"
            )
        merges.append((ranks[parts[0]], ranks[parts[1]]))
    return merges
