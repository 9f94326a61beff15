"""Pre-splitting: text in, a `Counter` of its chunks out (`ChunkCounter`, `count_text`).

Long texts are cut at "safe" line breaks: just after a newline that has an ASCII non-space
character on each side, other than '/' on the right (o200k's punctuation alternative,
`[\\r\\n/]*`, runs on through newlines and slashes). No built-in pattern has a match that
crosses such a point, so the chunks equal those of the uncut text; the tests check this for
every built-in pattern over all short contexts around a cut. (A custom pattern whose
matches span such a line break would see the pieces separately.) `counting.py` uses the
cuts to count a corpus in pieces, over several processes.

Under the built-in patterns a text is split by the regex only in its distinct space-led
words (see `ChunkCounter`): the regex costs about a thousand instructions per character,
`str.split` and `Counter` far less, and most words repeat. An ASCII word is split by the
pattern's twin in the standard library's `re` (`patterns.ascii_twin`), which finds the same
chunks in ASCII text at about half the cost of a `regex` call or less.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterator, Sequence

import regex

from gpt_tokenizers.patterns import PATTERNS, ascii_twin

WORD_SLICE_CHARS = 1 << 18  # `ChunkCounter` splits a text in slices of about this size

# ASCII non-space before the newline; after it, the same without '/' (0x2f).
_SAFE_CUT = re.compile(r"[!-~]\n(?=[!-.0-~])")
SAFE_CUT_BYTES = re.compile(rb"[!-~]\n(?=[!-.0-~])")
# Patterns under which `ChunkCounter` gives the chunks of `findall` (see there).
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
    counter = ChunkCounter(pattern, specials)
    counter.add(text)
    return counter.result()


class ChunkCounter:
    """Counts the chunks of many texts, each split on its own, as one `Counter`.

    Under the built-in patterns no chunk holds a non-space character followed by a space,
    and none looks behind, so a text may be cut before every space that follows a
    non-space character and each piece split on its own. `str.split` and `Counter` make
    that cut in C (`_split_words`); a space after whitespace is no such cut (in "a \n b"
    the chunks depend on the whole run), so those pieces are joined back first. The
    distinct pieces of every text added are gathered, and the regex (the slow part, per
    chunk) runs once per distinct piece, in `result`: over the pieces of a corpus most
    words repeat, so a worker splits each word once, not once per chunk or per piece.
    """

    def __init__(self, pattern: str, specials: Sequence[str] = ()) -> None:
        self._specials = tuple(specials)
        self._split_re, self._special_re = _regexes(pattern, self._specials)
        self._by_words = pattern in _WORD_SAFE
        self._line_safe = pattern in _LINE_SAFE
        self._counts: Counter[str] = Counter()
        self._distinct: Counter[str] = Counter()  # space-led words -> count, not yet split
        self._mark: str | None = None  # the mark the gathered words were cut with

    def add(self, text: str) -> None:
        """Count the chunks of `text`; special-token text is removed (it is never merged)."""
        if self._special_re is None or not any(s in text for s in self._specials):
            self._add_part(text)
        else:
            for part in self._special_re.split(text):
                self._add_part(part)

    def result(self) -> Counter[str]:
        """The counts of every chunk added so far."""
        self._split_distinct()
        return self._counts

    def _add_part(self, text: str) -> None:
        if not self._by_words:
            self._counts.update(self._split_re.findall(text))
            return
        # A mark for the cuts after newlines (see _split_words): a character not in the text.
        mark = None
        if self._line_safe:
            mark = next((c for c in _MARKS if c not in text), None)
        if mark != self._mark:  # the words gathered so far were cut with another mark
            self._split_distinct()
            self._mark = mark
        # In slices (cut where every pattern allows), so the pieces of only one are held at once.
        for piece in safe_pieces(text, WORD_SLICE_CHARS):
            _split_words(piece, self._distinct, self._counts, self._split_re, mark)

    def _split_distinct(self) -> None:
        """Split the gathered words and count their chunks; start gathering anew."""
        distinct, counts, mark = self._distinct, self._counts, self._mark
        self._distinct = Counter()
        get, findall = counts.get, self._split_re.findall
        # ASCII words are split by the pattern's `re` twin, which finds the same chunks there
        # at about half the cost a call or less (patterns.ascii_twin).
        twin = ascii_twin(self._split_re.pattern)
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


def safe_pieces(text: str, max_chars: int) -> Iterator[str]:
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
