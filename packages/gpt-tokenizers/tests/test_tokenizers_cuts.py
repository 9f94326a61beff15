"""Cutting long texts for parallel work never changes their chunks, for every built-in pattern."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import pytest
import regex
import tiktoken
from gpt_tokenizers import BPETokenizer
from gpt_tokenizers import pretokenize as pretokenize_module
from gpt_tokenizers.patterns import PATTERNS
from gpt_tokenizers.pretokenize import count_files, count_text, count_texts

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
    monkeypatch.setattr(pretokenize_module, "PIECE_CHARS", 1_000)
    monkeypatch.setattr(pretokenize_module, "PARALLEL_MIN", 0)
    whole = count_text(text, PATTERNS[name])
    assert count_files([path], PATTERNS[name], processes=2) == whole
    assert count_texts(text, PATTERNS[name], processes=2) == whole


# Spaces and newlines next to every kind of neighbour: letters (ASCII of each case,
# non-ASCII), a digit, punctuation ("/" is o200k's after newlines), and whitespace of
# several kinds, the non-ASCII ones included, and NUL (the first mark _count_by_words
# tries for its cuts after newlines, so texts holding it must use another).
WORD_ALPHABET = "aAé1 .'/\t\r\n\xa0\u3000\x00"


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_counting_by_distinct_words_equals_splitting_the_whole_text(name: str) -> None:
    # count_text splits only the distinct space-led words (cut again after newlines under
    # gpt4 and o200k) of a text (see _count_by_words):
    # every string of up to 4 characters, and a book-like text, counts as the plain split.
    split = regex.compile(PATTERNS[name]).findall
    texts = [
        *_strings_of(WORD_ALPHABET, 4),
        "Said he,\n\n  'Tis a  1.5\t  day.  \n",
        "end.\nStart \x00\x01\ufdd0 x\ny \n/z",  # every mark taken: no cuts after newlines
    ]
    for text in texts:
        assert count_text(text, PATTERNS[name]) == Counter(split(text)), repr(text)


def test_str_isspace_covers_the_regex_whitespace() -> None:
    # _count_by_words joins a piece to the next when it ends in str.isspace() whitespace;
    # that is only safe if everything the patterns' \s matches is among it.
    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    assert all(ch.isspace() for ch in regex.findall(r"\s", everything))
