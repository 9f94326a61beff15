"""Cutting long texts for parallel work never changes their chunks, for every built-in pattern."""

from __future__ import annotations

import random
import warnings
from collections import Counter
from pathlib import Path

import pytest
import regex
import tiktoken
from gpt_tokenizers import BPETokenizer
from gpt_tokenizers import counting as counting_module
from gpt_tokenizers import pretokenize as pretokenize_module
from gpt_tokenizers.counting import count_files, count_texts
from gpt_tokenizers.patterns import PATTERNS, ascii_twin
from gpt_tokenizers.pretokenize import ChunkCounter, count_text

# Letters of each case, a digit, whitespace, and the punctuation the patterns treat apart
# ("'" starts contractions, "/" is swallowed after newlines by o200k); "s" ends "'s".
CUT_ALPHABET = "aAs1 \t\r\n.'/"


def _strings_of(alphabet: str, max_len: int) -> list[str]:
    out = [""]
    for _ in range(max_len):
        out += [s + c for s in out if len(s) == len(out[-1]) for c in alphabet]
    return out


def _strings(max_len: int) -> list[str]:
    return _strings_of(CUT_ALPHABET, max_len)


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_every_short_context_around_a_cut_keeps_the_chunks(name: str) -> None:
    # Every string (up to 2 characters) + newline + (up to 3): wherever safe_pieces cuts it
    # (max_chars=0: at every safe point), the pieces split like the whole.
    split = regex.compile(PATTERNS[name]).findall
    cuts = 0
    for left in _strings(2):
        for right in _strings(3):
            text = left + "\n" + right
            pieces = list(pretokenize_module.safe_pieces(text, max_chars=0))
            if len(pieces) > 1:
                cuts += len(pieces) - 1
                assert [c for p in pieces for c in split(p)] == split(text), (text, pieces)
    assert cuts > 10_000  # the check did see many cuts


# Lines whose line breaks are (or look like) cut points, for every pattern's rules.
STRADDLING = [".\n/", "a.\n/x", "x\n//y", "'s\n's", "1\n2", "a\nb", "?!\n\r\n.", "a \n b", "é\nç"]


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_threaded_encode_and_file_counts_equal_tiktoken_across_cuts(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "".join(STRADDLING[i % len(STRADDLING)] + "\n" for i in range(20_000))
    assert len(text) > 64_000  # long enough for encode to cut it and use threads
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tok = BPETokenizer.train(text[:5_000], vocab_size=300, pattern=name)
    ranks = {tok.token_bytes(i): i for i in range(tok.vocab_size)}
    plain = tiktoken.Encoding("plain", pat_str=PATTERNS[name], mergeable_ranks=ranks,
                              special_tokens={})  # fmt: skip
    expected = plain.encode_ordinary(text)
    tok.num_threads = 4
    threaded = tok.encode(text)
    tok.num_threads = 1
    assert threaded == tok.encode(text) == expected

    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(counting_module, "RANGE_BYTES", 1_000)
    monkeypatch.setattr(counting_module, "PIECE_CHARS", 1_000)
    monkeypatch.setattr(counting_module, "PARALLEL_MIN", 0)
    whole = count_text(text, PATTERNS[name])
    assert count_files([path], PATTERNS[name], processes=2) == whole
    assert count_texts(text, PATTERNS[name], processes=2) == whole


# Spaces and newlines next to every kind of neighbour: letters (ASCII of each case,
# non-ASCII), a digit, punctuation ("/" is o200k's after newlines), and whitespace of
# several kinds, the non-ASCII ones included, and NUL (the first mark ChunkCounter
# tries for its cuts after newlines, so texts holding it must use another).
WORD_ALPHABET = "aAé1 .'/\t\r\n\xa0\u3000\x00"


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_counting_by_distinct_words_equals_splitting_the_whole_text(name: str) -> None:
    # count_text splits only the distinct space-led words (cut again after newlines under
    # gpt4 and o200k) of a text (see ChunkCounter):
    # every string of up to 4 characters, and a book-like text, counts as the plain split.
    split = regex.compile(PATTERNS[name]).findall
    texts = [
        *_strings_of(WORD_ALPHABET, 4),
        "Said he,\n\n  'Tis a  1.5\t  day.  \n",
        "end.\nStart \x00\x01\ufdd0 x\ny \n/z",  # every mark taken: no cuts after newlines
    ]
    for text in texts:
        assert count_text(text, PATTERNS[name]) == Counter(split(text)), repr(text)


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_one_counter_over_many_texts_counts_each_as_split_alone(name: str) -> None:
    # A counting worker keeps one ChunkCounter over all its ranges and splits the words
    # gathered from them at the end; texts holding its mark for newline cuts make it
    # split what it has and go on with another mark. Each text counts as split alone.
    split = regex.compile(PATTERNS[name]).findall
    rng = random.Random(1)
    texts = ["".join(rng.choices(WORD_ALPHABET + "bcd", k=rng.randint(0, 60))) for _ in range(400)]
    texts += ["end.\nStart \x00\x01\ufdd0 x\ny", "plain\nwords here", "x\x00\ny \n z"]
    counter = ChunkCounter(PATTERNS[name], ["<|s|>"])
    expected: Counter[str] = Counter()
    for text in texts:
        counter.add(f"{text}<|s|>{text[::-1]}")
        expected.update(split(text))
        expected.update(split(text[::-1]))
    assert counter.result() == expected


def test_files_whose_ranges_hold_the_marks_count_as_the_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ranges read by one worker, some holding the first marks: the same counts.
    lines = [f"Line {i} of the text.\nand more\n" for i in range(3_000)]
    lines[700] = "a NUL \x00 here.\n"
    lines[1_400] = "both \x00\x01 here.\n"
    text = "".join(lines)
    path = tmp_path / "marks.txt"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(counting_module, "RANGE_BYTES", 2_000)
    monkeypatch.setattr(counting_module, "PARALLEL_MIN", 0)
    split = regex.compile(PATTERNS["gpt4"]).findall
    for processes in (1, 2):
        assert count_files([path], PATTERNS["gpt4"], processes=processes) == Counter(split(text))


def test_str_isspace_covers_the_regex_whitespace() -> None:
    # ChunkCounter joins a piece to the next when it ends in str.isspace() whitespace;
    # that is only safe if everything the patterns' \s matches is among it.
    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    assert all(ch.isspace() for ch in regex.findall(r"\s", everything))


# ASCII characters of every class the patterns tell apart, with those where `re` and
# `regex` could differ: \x0b and \x0c (whitespace to both), \x1c (str.isspace but not
# Unicode White_Space, like \x1d-\x1f, which the pairs cover), NUL, and the letters of
# contractions in both cases.
TWIN_ALPHABET = "aZsL1 \t\n\r\x0b\x0c\x1c\x00.'/"


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_ascii_twin_splits_ascii_text_as_the_pattern_does(name: str) -> None:
    # Counting splits ASCII words with the pattern's `re` twin: it must find the same
    # chunks on every string of up to 4 characters of TWIN_ALPHABET, every pair of ASCII
    # characters, and longer random ASCII strings.
    twin = ascii_twin(PATTERNS[name])
    assert twin is not None
    split = regex.compile(PATTERNS[name]).findall
    rng = random.Random(0)
    every_ascii = [chr(c) for c in range(128)]
    texts = [
        *_strings_of(TWIN_ALPHABET, 4),
        *(a + b for a in every_ascii for b in every_ascii),
        *("".join(rng.choices(every_ascii, k=rng.randint(5, 40))) for _ in range(5_000)),
        "Said he,\n\n  'Tis a  1.5\t  day.  \n",
        "I'LL go; don't\n\n/usr \x1c\x1d\x1e\x1f  \x0b\x0c x 12345",
    ]
    for text in texts:
        assert twin.findall(text) == split(text), repr(text)
    assert ascii_twin(r"\w+") is None  # a custom pattern keeps `regex`
