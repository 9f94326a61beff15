"""Pre-splitting and counting: text in, `Counter` of unique chunks out.

Memory grows with the number of unique chunks, not with the size of the input: files are
read in byte ranges and iterators in batches, and several processes split and count at
once. Long texts are cut at "safe" line breaks: just after a newline that has an ASCII
non-space character on each side, other than '/' on the right (o200k's punctuation
alternative, `[\\r\\n/]*`, runs on through newlines and slashes). No built-in pattern has
a match that crosses such a point, so the chunks equal those of the uncut text; the tests
check this for every built-in pattern over all short contexts around a cut. (A custom
pattern whose matches span such a line break would see the pieces separately.)

Under the built-in patterns a text is split by the regex only in its distinct space-led
words (`_count_by_words`): the regex costs about a thousand instructions per character,
`str.split` and `Counter` far less, and most words repeat. An ASCII word is split by the
pattern's twin in the standard library's `re` (`patterns.ascii_twin`), which finds the same
chunks in ASCII text at about half the cost of a `regex` call or less.
"""

from __future__ import annotations

import itertools
import os
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import regex

from gpt_tokenizers._progress import progress
from gpt_tokenizers.errors import TokenizerError
from gpt_tokenizers.patterns import PATTERNS, ascii_twin

if TYPE_CHECKING:  # imported when a pool starts: it costs 2.6 MB, most of a small run's peak
    import multiprocessing.pool

PIECE_CHARS = 4_000_000  # target size of one unit of work (characters or bytes)
PARALLEL_MIN = 3_000_000  # below this much text, one process is faster than a pool
WORD_SLICE_CHARS = 1 << 18  # `_count_by_words` splits a text in slices of about this size

# ASCII non-space before the newline; after it, the same without '/' (0x2f).
_SAFE_CUT = re.compile(r"[!-~]\n(?=[!-.0-~])")
_SAFE_CUT_BYTES = re.compile(rb"[!-~]\n(?=[!-.0-~])")
# Patterns under which `_count_by_words` gives the chunks of `findall` (see there).
_WORD_SAFE = frozenset(PATTERNS.values())
# Patterns under which a chunk never runs past a newline into a non-space other than "/"
# (o200k's punctuation takes "/" after newlines), and a text ending in a newline splits as
# it does in context: a run of whitespace ending in a newline is one chunk either way (not
# under GPT-2, where `\s++$` makes it one chunk at the end but two before a word).
_LINE_SAFE = frozenset([PATTERNS["gpt4"], PATTERNS["o200k"]])
_MARKS = "\x00\x01\ufdd0"  # candidates for _split_words' mark (the first not in the text)
# Whitespace (str.isspace(), as re's \s is) before a space, but for a space before a mark.
_SPACE_AFTER_SPACE = {
    m: re.compile(r"\s(?= )" if m is None else rf"\s(?= (?!{m}))") for m in [None, *_MARKS]
}
_NEWLINE_CUT = re.compile(r"\n(?=[^\s/])")  # a newline that a non-space other than "/" follows
_compiled: dict[tuple[str, tuple[str, ...]], tuple[regex.Pattern[str], regex.Pattern[str] | None]]
_compiled = {}


def _regexes(
    pattern: str, specials: tuple[str, ...]
) -> tuple[regex.Pattern[str], regex.Pattern[str] | None]:
    """Compiled split pattern and special-token splitter, cached per process."""
    key = (pattern, specials)
    if key not in _compiled:
        special_re = None
        if specials:
            # Longest first so that a special token containing another one wins.
            alts = sorted(specials, key=len, reverse=True)
            special_re = regex.compile("|".join(regex.escape(s) for s in alts))
        _compiled[key] = (regex.compile(pattern), special_re)
    return _compiled[key]


def count_text(text: str, pattern: str, specials: tuple[str, ...] = ()) -> Counter[str]:
    """Count the chunks of one text; special-token text is removed (it is never merged)."""
    split_re, special_re = _regexes(pattern, specials)
    count_part = _count_by_words if pattern in _WORD_SAFE else _count_by_regex
    if special_re is None or not any(s in text for s in specials):
        return count_part(text, split_re)
    counts: Counter[str] = Counter()
    for part in special_re.split(text):
        counts.update(count_part(part, split_re))
    return counts


def _count_by_regex(text: str, split_re: regex.Pattern[str]) -> Counter[str]:
    return Counter(split_re.findall(text))


def _split_words(
    text: str,
    distinct: Counter[str],
    counts: Counter[str],
    split_re: regex.Pattern[str],
    mark: str | None,
) -> None:
    """Add the space-led pieces of `text` (without their space) to `distinct`, and the
    chunks of its first piece, which has no space in front, to `counts`.

    With a `mark` (a character not in `text`), `text` is also cut after each newline that a
    non-space other than "/" follows (see _LINE_SAFE): most distinct words would otherwise
    be "end.\nStart" across a line break. The cut is made in C by putting " " + mark there,
    so `str.split` cuts it too and the piece after it is told apart by its leading mark.
    """
    if mark is not None:
        text = _NEWLINE_CUT.sub("\n " + mark, text)
    words = text.split(" ")
    # A space after whitespace (re's \s is str.isspace, which covers all of the regex's
    # \s) is no cut: the piece after it is joined to the one before. Found in C; piece
    # k + 1 follows the k-th space (from 0). A space put in front of a mark never joins.
    joins: list[int] = []
    k, at = 0, 0
    for m in _SPACE_AFTER_SPACE[mark].finditer(text):
        space = m.end()
        k += text.count(" ", at, space)
        at = space
        joins.append(k + 1)
    lead = 0  # pieces joined onto the first one, which has no space in front
    while lead < len(joins) and joins[lead] == lead + 1:
        lead += 1
    first = " ".join(words[: lead + 1])
    for i in joins[lead:]:  # left to right, so a run of joins builds up in the last piece
        words[i] = f"{words[i - 1]} {words[i]}"
        words[i - 1] = ""  # joined: an empty piece is otherwise always joined, but the last
    distinct.update(words[lead + 1 :])
    del distinct[""]
    counts.update(split_re.findall(first))
    if len(words) > lead + 1 and not words[-1]:
        counts[" "] += 1  # the text ends in a space after a non-space


def _count_by_words(text: str, split_re: regex.Pattern[str]) -> Counter[str]:
    """The chunks of `text`, counted by splitting only its distinct space-led words.

    Under the built-in patterns no chunk holds a non-space character followed by a space,
    and none looks behind, so the text may be cut before every space that follows a
    non-space character and each piece split on its own. `str.split` and `Counter` do
    that cut in C; the regex (the slow part, per chunk) then runs once per distinct piece
    instead of once per chunk of the text. A space after whitespace is no such cut (in
    "a \n b" the chunks depend on the whole run), so those pieces are joined back first.
    """
    # A mark for the cuts after newlines (see _split_words): a character not in the text.
    mark = None
    if split_re.pattern in _LINE_SAFE:
        mark = next((c for c in _MARKS if c not in text), None)
    distinct: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    # In slices (cut where every pattern allows), so the pieces of only one are held at once.
    for piece in safe_pieces(text, WORD_SLICE_CHARS):
        _split_words(piece, distinct, counts, split_re, mark)
    get, findall = counts.get, split_re.findall
    # ASCII words are split by the pattern's `re` twin, which finds the same chunks there
    # at about half the cost a call or less (patterns.ascii_twin).
    twin = ascii_twin(split_re.pattern)
    ascii_findall = findall if twin is None else twin.findall
    once: list[str] = []  # pieces seen once: split and counted together, in C
    once_ascii: list[str] = []
    for word, n in distinct.items():
        # A word after a newline cut starts with the mark; any other had a space in front.
        if word[0] == mark:
            word = word[1:]
            piece = word
        else:
            piece = " " + word
        is_ascii = word.isascii()
        # A run of ASCII letters, all lower case after the first, after an optional space
        # is one chunk under every built-in pattern: skip the regex for it.
        if is_ascii and word.isalpha() and (len(word) == 1 or word[1:].islower()):
            counts[piece] = get(piece, 0) + n
        elif n == 1:
            (once_ascii if is_ascii else once).append(piece)
        else:
            for chunk in (ascii_findall if is_ascii else findall)(piece):
                counts[chunk] = get(chunk, 0) + n
    counts.update(itertools.chain.from_iterable(map(findall, once)))
    counts.update(itertools.chain.from_iterable(map(ascii_findall, once_ascii)))
    return counts


def safe_pieces(text: str, max_chars: int = PIECE_CHARS) -> Iterator[str]:
    """Cut a long text into pieces of about `max_chars` at safe line breaks."""
    start = 0
    n = len(text)
    while n - start > max_chars:
        m = _SAFE_CUT.search(text, start + max_chars)
        if m is None:
            break
        yield text[start : m.end()]
        start = m.end()
    yield text[start:]


def _count_batch(args: tuple[list[str], str, tuple[str, ...]]) -> tuple[dict[str, int], int]:
    texts, pattern, specials = args
    counts: Counter[str] = Counter()
    size = 0
    for text in texts:
        counts.update(count_text(text, pattern, specials))
        size += len(text)
    return dict(counts), size


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


def _count_range(args: tuple[str, int, int, str, tuple[str, ...]]) -> tuple[dict[str, int], int]:
    path, start, end, pattern, specials = args
    return dict(count_text(_read_range(path, start, end), pattern, specials)), end - start


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
                m = _SAFE_CUT_BYTES.search(block)
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


def _pool(processes: int) -> multiprocessing.pool.Pool:
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    return ctx.Pool(processes)


def _run(
    tasks: Iterable[Any],
    func: Callable[[Any], tuple[dict[str, int], int]],
    processes: int,
    total: int | None,
    show_progress: bool,
) -> Counter[str]:
    """Run count tasks and merge their counts: here, one by one, when processes <= 1, else
    in a pool with a bounded queue (so iterators stream). The bar counts input bytes
    (characters for texts) and shows the unique chunks so far."""
    counts: Counter[str] = Counter()
    unit = "B" if total is not None else "char"
    with progress(
        show_progress, total=total, desc="counting chunks", unit=unit, unit_scale=True
    ) as bar:

        def add(result: tuple[dict[str, int], int]) -> None:
            part, size = result
            counts.update(part)
            bar.set_postfix_str(f"{len(counts):,} unique", refresh=False)
            bar.update(size)

        if processes <= 1:
            for task in tasks:
                add(func(task))
            return counts
        with _pool(processes) as pool:
            pending: deque[multiprocessing.pool.AsyncResult[tuple[dict[str, int], int]]]
            pending = deque()
            for task in tasks:
                pending.append(pool.apply_async(func, (task,)))
                while len(pending) >= 2 * processes or (pending and pending[0].ready()):
                    add(pending.popleft().get())
            while pending:
                add(pending.popleft().get())
    return counts


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

    def batches() -> Iterator[list[str]]:
        batch: list[str] = []
        size = 0
        for text in source:
            if not isinstance(text, str):
                raise TokenizerError(f"training texts must be strings, got {type(text).__name__}")
            for piece in safe_pieces(text):
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
    if second is None:
        procs = 1  # one batch of input: a pool would only add start-up time
    batches_all = [first] if second is None else _chain(first, second, it)
    tasks = ((batch, pattern, tuple(specials)) for batch in batches_all)
    return _run(tasks, _count_batch, procs, None, show_progress)


def _chain(first: list[str], second: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield second
    yield from rest


def count_files(
    paths: Sequence[str | os.PathLike[str]],
    pattern: str,
    specials: Sequence[str] = (),
    processes: int | None = None,
    show_progress: bool = False,
) -> Counter[str]:
    """Count chunks over files (UTF-8), streamed in byte ranges by several processes."""
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
    procs = processes or default_processes()
    tasks = (
        (path, start, end, pattern, spec)
        for path, size in files
        for start, end in _file_ranges(path, size, PIECE_CHARS)
    )
    if total < PARALLEL_MIN:
        procs = 1  # small input: one process is faster than a pool
    return _run(tasks, _count_range, procs, total, show_progress)
