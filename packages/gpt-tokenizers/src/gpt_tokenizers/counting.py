"""Counting a corpus: the chunks of files, or of an iterator of texts, over several processes.

Memory grows with the number of unique chunks, not with the size of the input: files are
read in byte ranges and iterators in batches, both cut at safe line breaks (see
pretokenize.py), so no chunk is split differently than in the whole text.

Files are counted by `processes` workers that each keep one `ChunkCounter` over all the
ranges they take, so a worker splits each distinct word once, however many of its ranges
hold it. The ranges are known up front: a worker takes the next one from a shared index as
it finishes one, so a slow core gets fewer. Iterators stream instead: batches of about
`PIECE_CHARS` go to a pool with a bounded queue, one `ChunkCounter` per batch.
"""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpt_tokenizers._progress import progress
from gpt_tokenizers.errors import TokenizerError
from gpt_tokenizers.pretokenize import SAFE_CUT_BYTES, ChunkCounter, safe_pieces

if TYPE_CHECKING:  # imported when a pool starts: it costs 2.6 MB, most of a small run's peak
    import multiprocessing.context
    import multiprocessing.pool
    from multiprocessing.sharedctypes import Synchronized

PIECE_CHARS = 4_000_000  # target size of one batch of texts (characters)
RANGE_BYTES = 1 << 20  # target size of one byte range of a file: small, so loads even out
PARALLEL_MIN = 3_000_000  # below this much text, one process is faster than a pool
POLL_SECONDS = 0.1  # how often the bar is moved while workers count files

_Range = tuple[str, int, int]  # (path, start, end): bytes start..end of a file
# In a worker: the index of the next range to take, and the bytes counted so far.
_shared: tuple[Synchronized[int], Synchronized[int]] | None = None


def count_files(
    paths: Sequence[str | os.PathLike[str]],
    pattern: str,
    specials: Sequence[str] = (),
    processes: int | None = None,
    show_progress: bool = False,
) -> Counter[str]:
    """Count chunks over files (UTF-8), read in byte ranges by several processes."""
    spec = tuple(specials)
    files: list[tuple[str, int]] = []
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise FileNotFoundError(f"training file not found: {path}")
        if not path.is_file():
            raise TokenizerError(f"training input is not a file: {path}")
        files.append((str(path), path.stat().st_size))
    total = sum(size for _, size in files)
    ranges = [
        (name, start, end)
        for name, size in files
        for start, end in _file_ranges(name, size, RANGE_BYTES)
    ]
    procs = min(processes or default_processes(), len(ranges))
    if total < PARALLEL_MIN:
        procs = 1  # small input: one process is faster than a pool
    with progress(
        show_progress, total=total, desc="counting chunks", unit="B", unit_scale=True
    ) as bar:
        if procs <= 1:
            counter = ChunkCounter(pattern, spec)
            for name, start, end in ranges:
                counter.add(_read_range(name, start, end))
                bar.update(end - start)
            return counter.result()
        return _count_ranges_in_pool(ranges, pattern, spec, procs, bar)


def _count_ranges_in_pool(
    ranges: list[_Range], pattern: str, specials: tuple[str, ...], procs: int, bar: Any
) -> Counter[str]:
    """Count `ranges` in `procs` workers that take them in turn, moving `bar` meanwhile."""
    ctx = _context()
    next_range, done = ctx.Value("q", 0), ctx.Value("q", 0)
    counts: Counter[str] = Counter()
    with _pool(procs, _start_worker, (next_range, done)) as pool:
        pending = [
            pool.apply_async(_take_ranges, (ranges, pattern, specials)) for _ in range(procs)
        ]
        while pending:
            pending[0].wait(POLL_SECONDS)
            bar.update(done.value - bar.n)
            for result in [r for r in pending if r.ready()]:
                counts.update(result.get())  # raises a worker's error, such as bad UTF-8
                pending.remove(result)
    return counts


def _start_worker(next_range: Synchronized[int], done: Synchronized[int]) -> None:
    global _shared
    _shared = (next_range, done)


def _take_ranges(ranges: list[_Range], pattern: str, specials: tuple[str, ...]) -> dict[str, int]:
    """In a worker: count the ranges it takes, one at a time, until none is left."""
    assert _shared is not None, "_take_ranges runs in a pool started by _count_ranges_in_pool"
    next_range, done = _shared
    counter = ChunkCounter(pattern, specials)
    while True:
        with next_range.get_lock():
            i = next_range.value
            next_range.value = i + 1
        if i >= len(ranges):
            return dict(counter.result())
        path, start, end = ranges[i]
        counter.add(_read_range(path, start, end))
        with done.get_lock():
            done.value += end - start


def _read_range(path: str, start: int, end: int) -> str:
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TokenizerError(
            f"{path}: not valid UTF-8 at byte {start + exc.start}: {exc.reason} "
            f"(expected a UTF-8 text file)"
        ) from None


def _file_ranges(path: str, size: int, piece: int) -> Iterator[tuple[int, int]]:
    """Byte ranges of about `piece` bytes that end at safe line breaks."""
    start = 0
    with open(path, "rb") as f:
        while size - start > piece:
            f.seek(start + piece)
            cut = None
            offset = start + piece
            while cut is None:
                block = f.read(1 << 16)
                if not block:
                    break
                # Keep 2 bytes of overlap so a cut straddling two blocks is still found.
                m = SAFE_CUT_BYTES.search(block)
                if m is not None:
                    cut = offset + m.end()
                elif len(block) <= 2:
                    break  # only the overlap is left: no cut before the end of the file
                else:
                    offset += len(block) - 2
                    f.seek(offset)
            if cut is None or cut >= size:
                break
            yield start, cut
            start = cut
    yield start, size


def default_processes() -> int:
    """Processes to use: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _context() -> multiprocessing.context.BaseContext:
    """Fork where there is fork: the workers start in milliseconds and need no re-import."""
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def _pool(
    processes: int, initializer: Any = None, initargs: tuple[Any, ...] = ()
) -> multiprocessing.pool.Pool:
    return _context().Pool(processes, initializer, initargs)


def count_texts(
    texts: str | Iterable[str],
    pattern: str,
    specials: Sequence[str] = (),
    processes: int | None = None,
    show_progress: bool = False,
) -> Counter[str]:
    """Count chunks over a string or an iterator of strings (each string split on its own)."""
    procs = processes or default_processes()
    source: Iterable[str] = [texts] if isinstance(texts, str) else texts
    spec = tuple(specials)

    def batches() -> Iterator[list[str]]:
        batch: list[str] = []
        size = 0
        for text in source:
            if not isinstance(text, str):
                raise TokenizerError(f"training texts must be strings, got {type(text).__name__}")
            for piece in safe_pieces(text, PIECE_CHARS):
                batch.append(piece)
                size += len(piece)
                if size >= PIECE_CHARS:
                    yield batch
                    batch, size = [], 0
        if batch:
            yield batch

    it = batches()
    first = next(it, None)
    if first is None:
        return Counter()
    second = next(it, None)
    with progress(show_progress, desc="counting chunks", unit="char", unit_scale=True) as bar:
        # One process, or one batch of input, where a pool would only add its start-up.
        if second is None or procs <= 1:
            counter = ChunkCounter(pattern, spec)
            for batch in [first] if second is None else _chain(first, second, it):
                for text in batch:
                    counter.add(text)
                bar.update(sum(map(len, batch)))
            return counter.result()

        counts: Counter[str] = Counter()

        def add(result: tuple[dict[str, int], int]) -> None:
            part, size = result
            counts.update(part)
            bar.set_postfix_str(f"{len(counts):,} unique", refresh=False)
            bar.update(size)

        with _pool(procs) as pool:
            queued: deque[multiprocessing.pool.AsyncResult[tuple[dict[str, int], int]]]
            queued = deque()
            for batch in _chain(first, second, it):
                queued.append(pool.apply_async(_count_batch, ((batch, pattern, spec),)))
                while len(queued) >= 2 * procs or (queued and queued[0].ready()):
                    add(queued.popleft().get())
            while queued:
                add(queued.popleft().get())
    return counts


def _count_batch(args: tuple[list[str], str, tuple[str, ...]]) -> tuple[dict[str, int], int]:
    texts, pattern, specials = args
    counter = ChunkCounter(pattern, specials)
    for text in texts:
        counter.add(text)
    return dict(counter.result()), sum(map(len, texts))


def _chain(first: list[str], second: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield second
    yield from rest
