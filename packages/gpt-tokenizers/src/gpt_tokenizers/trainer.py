"""BPE training: checked arguments and counted chunks in, an ordered list of merges out.

`train_bpe` is what `BPETokenizer.train` / `train_files` run; `train_merges` is the loop.

Rule: at every step the most frequent adjacent pair wins; among equally frequent pairs the
smallest (left id, right id) wins, the rule rustbpe and HF tokenizers use. Merge k creates
id 256 + k. Pairs never cross chunk boundaries.

Why it is fast in pure Python:
- each unique chunk is stored once with its count, as a str with one character per id
  (chr(id)): a merge finds and rewrites its pair with `str.find` / `str.replace` in C,
  which scan left to right without overlap exactly as a merge does, and since the new id
  is fresh, its characters in the rewritten chunk are exactly the merged occurrences;
- pair counts live in a dict keyed by one int, (left << shift) | right, cheaper to hash
  than a tuple; the same int orders pairs exactly like (left, right);
- the first pairs are found and counted by C-level iterators (`index_pairs`): the chunks
  are joined and every adjacent byte pair is read as a 16-bit word;
- `where` maps a pair to the chunks that contained it when it appeared, so a merge visits
  only those chunks (stale entries are skipped by one `str.find`); a chunk with one
  occurrence of the pair, the common case, takes a shorter path, and such chunks are
  grouped by the id beside the pair, so the counts change once per group, not per chunk;
- a heap holds (-count, pair) packed into one int, so its smallest entry is the highest
  count and, among equal counts, the smallest (left, right): the tie rule above, which
  `reference_trainer.py` states as `min(stats, key=lambda p: (-stats[p], p))`. Entries
  go stale when counts drop and are fixed lazily when they reach the top. Counts of
  existing pairs only ever drop, and a pair only gains count in the merge that creates its
  newer token, so every pair is pushed once with its full count and a stale top is always
  an over-estimate;
- the cycle collector is paused: training makes no reference cycles, only many lists.

A merge rescans each chunk it visits, which is cheapest for the short chunks of ordinary
text but would make a long chunk cost its length at every merge (a run of one letter is
one chunk under the GPT-4 pattern and may be megabytes long). Chunks longer than
`LONG_CHUNK` bytes therefore live in `_runs.LongChunks`: linked lists of runs of one id
plus, per pair, the runs where it starts, so a merge costs only the occurrences it touches
and a run of one letter, however long, costs one step per merge.
"""

from __future__ import annotations

import gc
import heapq
import sys
import warnings
from array import array
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import accumulate, chain, compress, repeat
from operator import itemgetter
from typing import Any

from gpt_tokenizers._progress import progress
from gpt_tokenizers._runs import LongChunks
from gpt_tokenizers.errors import TokenizerError
from gpt_tokenizers.patterns import resolve_pattern

# The bar is moved once per this many merges: a per-merge update would cost more than a
# cheap merge late in training.
PROGRESS_EVERY = 64
# Chunks longer than this many bytes are merged through `LongChunks` (see the docstring).
LONG_CHUNK = 256
# The pair index is built this many short chunks at a time, so its temporary lists stay
# small next to the index itself.
INDEX_BLOCK = 4096
SUM_SLICE = 1 << 14  # indices per `itemgetter` call when a pair's count is summed


def check_specials(special_tokens: Iterable[str]) -> list[str]:
    """The special tokens as a list, checked to be distinct non-empty strings."""
    specials = list(special_tokens)
    for s in specials:
        if not isinstance(s, str) or not s:
            raise TokenizerError(f"special tokens must be non-empty strings, got {s!r}")
    dupes = sorted(s for s, n in Counter(specials).items() if n > 1)
    if dupes:
        raise TokenizerError(f"special tokens listed more than once: {dupes}")
    return specials


def merges_for(vocab_size: int, specials: Sequence[str]) -> int:
    """How many merges make a vocabulary of `vocab_size` (256 bytes + merges + specials)."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise TokenizerError(f"vocab_size must be an int, got {vocab_size!r}")
    minimum = 256 + len(specials)
    if vocab_size < minimum:
        raise TokenizerError(
            f"vocab_size {vocab_size} is too small: byte-level BPE needs at least 256 byte "
            f"tokens plus {len(specials)} special token(s), so at least {minimum}"
        )
    return vocab_size - minimum


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while training: training makes tens of thousands of
    lists and no reference cycles, so each collection would only rescan them (about 7% of
    the merge phase's time). Plain reference counting still frees everything. The pause is
    process-wide: other threads go without cycle collection until training ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def train_bpe(
    count: Callable[..., Counter[str]],
    source: Any,
    vocab_size: int,
    pattern: str,
    special_tokens: Sequence[str],
    verbose: bool,
    processes: int | None,
) -> tuple[list[tuple[int, int]], str, list[str]]:
    """Count the chunks of `source` with `count` (`count_texts` or `count_files`), then
    learn the merges: (merges, resolved pattern, special tokens) for `BPETokenizer`."""
    specials = check_specials(special_tokens)
    num_merges = merges_for(vocab_size, specials)
    pat = resolve_pattern(pattern)
    # A `with`, not a decorator: the early-stop warning's stacklevel counts these frames.
    with _gc_paused():
        counts = count(source, pat, specials, processes, show_progress=verbose)
        if verbose:
            print(f"{len(counts):,} unique chunks; learning {num_merges:,} merges", file=sys.stderr)
        chunks = ((chunk.encode("utf-8"), n) for chunk, n in counts.items())
        merges = train_merges(chunks, num_merges, show_progress=verbose)
    return merges, pat, specials


def _merge_short(
    words: list[str],
    counts: list[int],
    visit: Iterable[int],
    a: int,
    b: int,
    new: int,
    shift: int,
    pair_counts: dict[int, int],
    new_counts: dict[int, int],
    new_where: dict[int, list[int]],
) -> None:
    """Merge (a, b) into `new` in the short chunks `visit` (stale ones are skipped): drop
    the counts of the pairs the merge breaks from `pair_counts` and count the pairs it
    makes (all holding `new`) in `new_counts`, with the chunks they are in, in `new_where`.
    """
    ab, n_chr = chr(a) + chr(b), chr(new)
    left_key, right_key = a, b << shift  # | left << shift, | right
    # Chunks holding the pair once, the common case, by the id left (right) of it: each
    # such id breaks one pair and makes one, whose counts change once per merge, by the
    # sum of the group's chunk counts, instead of once per chunk.
    lefts: defaultdict[str, list[int]] = defaultdict(list)
    rights: defaultdict[str, list[int]] = defaultdict(list)
    nget = new_counts.get
    wget = new_where.get
    for i in visit:
        w = words[i]
        p = w.find(ab)
        if p < 0:
            continue  # stale index entry: the pair left this chunk in an earlier merge
        if w.find(ab, p + 2) < 0:
            # One occurrence: its neighbours are old ids, and the (at most two) pairs it
            # makes are distinct and new to this chunk.
            words[i] = w.replace(ab, n_chr)
            if p:
                lefts[w[p - 1]].append(i)
            if p + 2 < len(w):
                rights[w[p + 2]].append(i)
            continue
        # `new` is a fresh id, so its characters in the rewritten chunk are exactly the
        # merged occurrences, and their neighbours tell which pairs broke and which formed.
        c = counts[i]
        w = words[i] = w.replace(ab, n_chr)
        last = len(w) - 1
        q = w.find(n_chr)
        made: list[int] = []
        while q >= 0:
            if q > 0:
                left = w[q - 1]
                if left != n_chr:  # (new, new) is made once, as the right side of the first
                    lc = ord(left)
                    pair_counts[(lc << shift) | left_key] -= c
                    made.append((lc << shift) | new)
            if q < last:
                right = w[q + 1]
                if right == n_chr:
                    pair_counts[right_key | a] -= c  # the (b, a) between two occurrences
                    made.append((new << shift) | new)
                    q += 1
                    continue
                rc = ord(right)
                pair_counts[right_key | rc] -= c
                made.append((new << shift) | rc)
            q = w.find(n_chr, q + 1)
        for nkey in made:
            new_counts[nkey] = nget(nkey, 0) + c
            lst = wget(nkey)
            if lst is None:
                new_where[nkey] = [i]
            elif lst[-1] != i:
                lst.append(i)
    for left, group in lefts.items():
        lc, n = ord(left) << shift, _sum_at(counts, group)
        pair_counts[lc | left_key] -= n
        _made(lc | new, n, group, new_counts, new_where)
    for right, group in rights.items():
        rc, n = ord(right), _sum_at(counts, group)
        pair_counts[right_key | rc] -= n
        _made((new << shift) | rc, n, group, new_counts, new_where)


def _made(
    key: int, n: int, group: list[int], new_counts: dict[int, int], new_where: dict[int, list[int]]
) -> None:
    """Count `n` more of the new pair `key`, made in the chunks `group`."""
    found = new_where.get(key)
    if found is None:  # the common case: only this group made it
        new_counts[key] = n
        new_where[key] = group
    else:  # also made in a chunk holding the pair more than once
        new_counts[key] += n
        found.extend(group)


def index_pairs(
    chunks: list[bytes], counts: list[int], shift: int
) -> tuple[dict[int, list[int]], dict[int, int]]:
    """Where each byte pair stands, pair -> the chunks holding it (a chunk once per
    occurrence, in order), and each pair's count (weighted by `counts`); pairs are packed
    as (left << shift) | right. What `reference_trainer.get_stats` counts, in C loops: the
    chunks are joined, a block at a time, and every adjacent byte pair read at once."""
    where16: defaultdict[int, list[int]] = defaultdict(list)  # left * 256 + right -> chunks
    chunks_of = where16.__getitem__
    for first in range(0, len(chunks), INDEX_BLOCK):
        block = chunks[first : first + INDEX_BLOCK]
        joined = b"".join(block)
        pairs = _byte_pairs(joined)
        inside = bytearray(b"\x01") * len(pairs)  # 0 for a pair across two chunks
        ends = list(accumulate(map(len, block[:-1])))  # where each chunk but the last ends
        deque(map(inside.__setitem__, map((-1).__add__, ends), repeat(0)), maxlen=0)
        # The chunk each pair is in: chunk i holds len(chunk) - 1 of them.
        owners = chain.from_iterable(
            map(repeat, range(first, first + len(block)), map((-1).__add__, map(len, block)))
        )
        # where16[pair].append(owner) for every pair inside a chunk.
        deque(map(list.append, map(chunks_of, compress(pairs, inside)), owners), maxlen=0)
    where: dict[int, list[int]] = {}
    pair_counts: dict[int, int] = {}
    for pair, found in where16.items():
        key = ((pair >> 8) << shift) | (pair & 0xFF)
        where[key] = found
        pair_counts[key] = _sum_at(counts, found)
    return where, pair_counts


def _sum_at(values: list[int], indices: list[int]) -> int:
    """sum(values[i] for i in indices), by `itemgetter`, which picks many items in one C
    call, over slices of the indices so that its tuples stay small."""
    if len(indices) == 1:
        return values[indices[0]]  # the common case in a merge's groups
    if len(indices) <= SUM_SLICE:
        return sum(itemgetter(*indices)(values))
    total = 0
    for start in range(0, len(indices), SUM_SLICE):
        part = indices[start : start + SUM_SLICE]
        # With one index, itemgetter returns the item itself, not a tuple.
        total += values[part[0]] if len(part) == 1 else sum(itemgetter(*part)(values))
    return total


def _byte_pairs(data: bytes) -> list[int]:
    """Every adjacent byte pair of `data` as left * 256 + right, in order: the 16-bit
    big-endian words at even offsets and at odd ones, interleaved."""
    n = len(data) - 1
    # "H" is a C unsigned short: 2 bytes wherever CPython runs.
    even = array("H", data[: 2 * ((n + 1) // 2)])
    odd = array("H", data[1 : 1 + 2 * (n // 2)])
    if sys.byteorder == "little":
        even.byteswap()
        odd.byteswap()
    pairs = [0] * n
    pairs[0::2] = even
    pairs[1::2] = odd
    return pairs


def train_merges(
    chunks: Iterable[tuple[bytes, int]],
    num_merges: int,
    show_progress: bool = False,
) -> list[tuple[int, int]]:
    """Learn up to `num_merges` merges from (chunk bytes, count) pairs.

    Stops early, with a warning, when no pair is left to merge.
    """
    shift = max(9, (255 + num_merges).bit_length())  # bits per id in a packed pair
    low = (1 << shift) - 1
    shift2 = 2 * shift  # bits of a packed pair inside a heap entry

    long = LongChunks(shift)
    long_counts: dict[int, int] = {}  # pair -> its count in the long chunks
    # A short chunk is a str with one character per id (chr(id)): finding and replacing a
    # pair are then `str.find` and `str.replace`, which scan left to right without overlap
    # exactly as a merge does, in C.
    shorts: list[bytes] = []
    counts: list[int] = []
    for chunk, count in chunks:
        if len(chunk) < 2 or count <= 0:  # a single byte has no pair to merge
            continue
        if len(chunk) > LONG_CHUNK:
            long.add(chunk, count, long_counts)
        else:
            shorts.append(chunk)
            counts.append(count)
    words = list(map(bytes.decode, shorts, repeat("latin-1")))  # byte -> the same code point
    # pair -> the short chunks that held it (see above), and the pair counts. A chunk holding
    # a pair twice is listed twice: its second visit then finds nothing left and moves on.
    where, pair_counts = index_pairs(shorts, counts, shift)
    del shorts
    for key, c in long_counts.items():
        pair_counts[key] = pair_counts.get(key, 0) + c
    # A plain dict from here: a missing pair is a bug, not 0.
    get = pair_counts.get

    heap = [(-c << shift2) | key for key, c in pair_counts.items()]
    heapq.heapify(heap)
    heappop, heappush = heapq.heappop, heapq.heappush

    merges: list[tuple[int, int]] = []
    bar = progress(show_progress, total=num_merges, desc="merges", unit="merge")
    for k in range(num_merges):
        if k % PROGRESS_EVERY == 0:
            bar.update(k - bar.n)
        # Pop the best pair, refreshing stale entries on the way.
        while heap:
            entry = heappop(heap)
            key = entry & ((1 << shift2) - 1)
            count = -(entry >> shift2)
            current = get(key, 0)
            if current == count:
                break
            if current > 0:
                heappush(heap, (-current << shift2) | key)
        else:
            warnings.warn(
                f"training stopped after {k} merges: the data has no pair left to merge "
                f"(asked for {num_merges}); the vocabulary is smaller than requested",
                UserWarning,
                stacklevel=4,
            )
            break

        a, b = key >> shift, key & low
        new = 256 + k
        merges.append((a, b))
        created = long.merge(key, new, pair_counts)  # new pairs in long chunks
        new_counts: dict[int, int] = {}
        new_where: dict[int, list[int]] = {}
        visit = where.pop(key, ())
        _merge_short(words, counts, visit, a, b, new, shift, pair_counts, new_counts, new_where)
        del pair_counts[key]
        if not created:  # the common case: no long chunk holds the pair
            for nkey, c in new_counts.items():
                pair_counts[nkey] = c
                heappush(heap, (-c << shift2) | nkey)
        else:
            for nkey, c in new_counts.items():
                pair_counts[nkey] = get(nkey, 0) + c
            created.update(new_counts)
            for nkey in created:
                c = pair_counts[nkey]
                if c > 0:
                    heappush(heap, (-c << shift2) | nkey)
                else:  # created and consumed within this merge, as (new, a) in "abab"
                    del pair_counts[nkey]
                    long.starts.pop(nkey, None)
        where.update(new_where)
    bar.update(len(merges) - bar.n)
    bar.close()
    return merges
