"""BPE training: checked arguments and counted chunks in, an ordered list of merges out.

`train_bpe` is what `BPETokenizer.train` / `train_files` run; `train_merges` is the loop.

Rule: at every step the most frequent adjacent pair wins; among equally frequent pairs the
smallest (left id, right id) wins, the rule rustbpe and HF tokenizers use. Merge k creates
id 256 + k. Pairs never cross chunk boundaries.

Why it is fast in pure Python:
- each unique chunk is stored once (a list of ids) with its count;
- pair counts live in a dict keyed by one int, (left << shift) | right, cheaper to hash
  than a tuple; the same int orders pairs exactly like (left, right);
- `where` maps a pair to the chunks that contained it when it appeared, so a merge visits
  only those chunks (stale entries are skipped cheaply);
- a heap holds (-count, pair) packed into one int, so its smallest entry is the highest
  count and, among equal counts, the smallest (left, right): the tie rule above, which
  `reference_trainer.py` states as `min(stats, key=lambda p: (-stats[p], p))`. Entries
  go stale when counts drop and are fixed lazily when they reach the top. Counts of
  existing pairs only ever drop, and a pair only gains count in the merge that creates its
  newer token, so every pair is pushed once with its full count and a stale top is always
  an over-estimate.

A merge rescans each chunk it visits, which is cheapest for the short chunks of ordinary
text but would make a long chunk cost its length at every merge (a run of one letter is
one chunk under the GPT-4 pattern and may be megabytes long). Chunks longer than
`LONG_CHUNK` bytes therefore live in `_runs.LongChunks`: linked lists of runs of one id
plus, per pair, the runs where it starts, so a merge costs only the occurrences it touches
and a run of one letter, however long, costs one step per merge.
"""

from __future__ import annotations

import heapq
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tqdm import tqdm

from gpt_tokenizers._runs import LongChunks
from gpt_tokenizers.errors import TokenizerError
from gpt_tokenizers.patterns import resolve_pattern

# The bar is moved once per this many merges: a per-merge update would cost more than a
# cheap merge late in training.
PROGRESS_EVERY = 64
# Chunks longer than this many bytes are merged through `LongChunks` (see the docstring).
LONG_CHUNK = 256


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
    counts = count(source, pat, specials, processes, show_progress=verbose)
    if verbose:
        print(f"{len(counts):,} unique chunks; learning {num_merges:,} merges", file=sys.stderr)
    chunks = ((chunk.encode("utf-8"), n) for chunk, n in counts.items())
    return train_merges(chunks, num_merges, show_progress=verbose), pat, specials


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

    pair_counts: dict[int, int] = {}
    long = LongChunks(shift)
    words: list[list[int]] = []
    counts: list[int] = []
    for chunk, count in chunks:
        if len(chunk) < 2 or count <= 0:  # a single byte has no pair to merge
            continue
        if len(chunk) > LONG_CHUNK:
            long.add(chunk, count, pair_counts)
        else:
            words.append(list(chunk))
            counts.append(count)

    # Initial pair counts and the pair -> chunks index of the short chunks.
    where: dict[int, list[int]] = {}
    get = pair_counts.get
    for i, w in enumerate(words):
        c = counts[i]
        prev = w[0]
        for t in w[1:]:
            key = (prev << shift) | t
            pair_counts[key] = get(key, 0) + c
            lst = where.get(key)
            if lst is None:
                where[key] = [i]
            elif lst[-1] != i:  # chunks are visited in order: dedupe against the last
                lst.append(i)
            prev = t

    heap = [(-c << shift2) | key for key, c in pair_counts.items()]
    heapq.heapify(heap)
    heappop, heappush = heapq.heappop, heapq.heappush

    merges: list[tuple[int, int]] = []
    bar = tqdm(total=num_merges, desc="merges", unit="merge", disable=not show_progress)
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
        nget = new_counts.get
        for i in where.pop(key, ()):
            w = words[i]
            n = len(w)
            last = n - 1
            # Occurrences of (a, b), scanned left to right without overlap.
            pos: list[int] = []
            n_a = w.count(a)
            if n_a == 1 or a != b:
                # Skipping over b never skips an a here, so n_a bounds the search exactly.
                j = 0
                for _ in range(n_a):
                    j = w.index(a, j)
                    if j < last and w[j + 1] == b:
                        pos.append(j)
                        j += 2
                    else:
                        j += 1
            else:
                j = 0
                while j < last:
                    if w[j] == a and w[j + 1] == a:
                        pos.append(j)
                        j += 2
                    else:
                        j += 1
            if not pos:
                continue  # stale index entry: the pair left this chunk in an earlier merge
            c = counts[i]
            # Only windows touching an occurrence change: drop the old, add the new.
            made: list[int] = []  # the new pairs, once per occurrence
            prev_end = -1
            for p in pos:
                if p > 0 and p != prev_end:
                    left = w[p - 1]
                    pair_counts[(left << shift) | a] -= c
                    made.append((left << shift) | new)
                if p + 2 < n:
                    right = w[p + 2]
                    pair_counts[(b << shift) | right] -= c
                    if right == a and p + 3 < n and w[p + 3] == b:
                        right = new  # the next occurrence is adjacent: window (new, new)
                    made.append((new << shift) | right)
                prev_end = p + 2
            for nkey in made:
                new_counts[nkey] = nget(nkey, 0) + c
                lst = new_where.get(nkey)
                if lst is None:
                    new_where[nkey] = [i]
                elif lst[-1] != i:
                    lst.append(i)
            # Rewrite the chunk in place, right to left so positions stay valid.
            for p in reversed(pos):
                w[p : p + 2] = (new,)
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
