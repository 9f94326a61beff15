"""A readable pure-Python BPE trainer, the specification the fast `trainer.py` is tested against.

Byte-level BPE training in three steps:

1. Cut special-token text out of every training text (no merge may produce it) and split
   what is left with the pattern into chunks; merges never cross a chunk boundary.
2. Write each chunk as its UTF-8 bytes, ids 0..255.
3. Repeat `num_merges` times: count every adjacent pair of ids over all chunks
   (`get_stats`), pick the most frequent pair, on a tie the smallest (left id, right id),
   give it the next id (merge k creates 256 + k) and replace its occurrences in every
   chunk, left to right (`merge`). Stop early when no pair is left.

`trainer.py` learns exactly the same merges (tested, including ties) but never recounts
everything: it updates the counts of the few pairs next to each merged occurrence.
This one recounts every step, so it is only for small inputs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import pairwise

import regex


def split_chunks(text: str, pattern: str, special_tokens: Sequence[str] = ()) -> list[str]:
    """The chunks of `text`: special tokens cut out, then the pattern's matches."""
    parts = [text]
    if special_tokens:
        # Longest first, so that a special token containing another one wins.
        alternatives = sorted(special_tokens, key=len, reverse=True)
        parts = regex.split("|".join(regex.escape(s) for s in alternatives), text)
    return [chunk for part in parts for chunk in regex.findall(pattern, part)]


def get_stats(chunks: Iterable[tuple[list[int], int]]) -> Counter[tuple[int, int]]:
    """How often each adjacent pair occurs, over (ids, times the chunk occurs) pairs."""
    stats: Counter[tuple[int, int]] = Counter()
    for ids, count in chunks:
        for pair in pairwise(ids):
            stats[pair] += count
    return stats


def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """`ids` with every occurrence of `pair`, scanned left to right, replaced by `new_id`."""
    out: list[int] = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def train(
    texts: str | Iterable[str],
    num_merges: int,
    pattern: str,
    special_tokens: Sequence[str] = (),
) -> list[tuple[int, int]]:
    """Learn up to `num_merges` merges from a text or texts (each split on its own)."""
    counts: Counter[str] = Counter()
    for text in [texts] if isinstance(texts, str) else texts:
        counts.update(split_chunks(text, pattern, special_tokens))
    # Each distinct chunk is kept once with its count: the counts weigh its pairs.
    chunks = [(list(chunk.encode("utf-8")), n) for chunk, n in counts.items()]
    merges: list[tuple[int, int]] = []
    for k in range(num_merges):
        stats = get_stats(chunks)
        if not stats:
            break
        # Highest count first; among equal counts the smallest (left, right) pair.
        pair = min(stats, key=lambda p: (-stats[p], p))
        chunks = [(merge(ids, pair, 256 + k), n) for ids, n in chunks]
        merges.append(pair)
    return merges


def build_vocab(merges: Sequence[tuple[int, int]]) -> list[bytes]:
    """The bytes of every id the merges define: 256 single bytes, then one per merge."""
    vocab = [bytes([i]) for i in range(256)]
    for a, b in merges:
        vocab.append(vocab[a] + vocab[b])
    return vocab
