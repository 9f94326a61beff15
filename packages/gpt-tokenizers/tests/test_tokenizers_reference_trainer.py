"""The fast BPE trainer learns exactly the merges of the readable reference trainer."""

from __future__ import annotations

import gc
import random
import warnings
from itertools import pairwise

import pytest
from gpt_tokenizers import BPETokenizer
from gpt_tokenizers import reference_trainer as ref
from gpt_tokenizers.errors import TokenizerError
from gpt_tokenizers.patterns import GPT2_PATTERN, GPT4_PATTERN, O200K_PATTERN
from gpt_tokenizers.trainer import INDEX_BLOCK, LONG_CHUNK, index_pairs
from hypothesis import given, settings
from hypothesis import strategies as st

EOT = "<|endoftext|>"

INPUTS = {
    "prose": (
        "The quick brown fox jumps over the lazy dog. Don't panic! It's 2024, isn't it?\n"
        "Ünïcödé wörds, naïve café, 東京 and 北京, emoji 👋🏽 🇫🇷 ❤️.\n" * 4
    ),
    # Overlapping pairs: "aaaa" holds (a, a) three times but merges only twice.
    "runs": "aaaaaaaaa aaaa aaa bbbb ababab aabbaabb " * 3,
    # Every pair occurs once: each step is a tie, won by the smallest (left, right).
    "ties": "zyxwvutsrqponmlkjihgfedcba",
    "specials": f"hello world{EOT}hello there{EOT}{EOT}<|end|>world hello",
    "whitespace": "    indented   code(x, y) -> {z: 1_000_000}\n\n\n\t\t  \r\nok\r\n",
}


def _both(
    texts: str | list[str], vocab_size: int, pattern: str, specials: list[str]
) -> tuple[BPETokenizer, list[tuple[int, int]]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small inputs run out of pairs: both stop early
        fast = BPETokenizer.train(texts, vocab_size, pattern=pattern, special_tokens=specials)
    merges = ref.train(texts, vocab_size - 256 - len(specials), pattern, specials)
    return fast, merges


@pytest.mark.parametrize("name", sorted(INPUTS))
@pytest.mark.parametrize("pattern", [GPT2_PATTERN, GPT4_PATTERN, O200K_PATTERN])
def test_same_merges_and_vocab_as_reference(name: str, pattern: str) -> None:
    fast, merges = _both(INPUTS[name], 256 + 60 + 2, pattern, [EOT, "<|end|>"])
    assert fast.merges == merges
    vocab = ref.build_vocab(merges)
    assert [fast.token_bytes(i) for i in range(len(vocab))] == vocab
    assert not any(EOT.encode() in token for token in vocab)  # special text is never merged


def test_ties_go_to_the_smallest_pair() -> None:
    # Chunks "zy" and " xw": every pair occurs once, so each step is a tie.
    fast, merges = _both("zy xw", 259, GPT4_PATTERN, [])
    assert merges == fast.merges == [(32, 120), (122, 121), (256, 119)]


def test_several_texts_are_split_separately() -> None:
    fast, merges = _both(["ab", "cd"], 300, GPT4_PATTERN, [])
    assert fast.merges == merges == [(97, 98), (99, 100)]  # no (b, c) across the texts


def test_training_leaves_the_garbage_collector_as_it_found_it() -> None:
    # Training pauses the cycle collector for speed; the caller's setting must come back,
    # even when training fails.
    try:
        for enabled in (True, False):
            (gc.enable if enabled else gc.disable)()
            BPETokenizer.train("hello hello world", 260)
            assert gc.isenabled() is enabled
            with pytest.raises(TokenizerError, match="vocab_size"):
                BPETokenizer.train("hello", 10)
            assert gc.isenabled() is enabled
    finally:
        gc.enable()


@settings(max_examples=40, deadline=None)
@given(
    texts=st.lists(
        st.lists(st.sampled_from([*"aab  \n.é👋", EOT, "'s", "12"]), max_size=60).map("".join),
        min_size=1,
        max_size=4,
    ),
    extra=st.integers(min_value=0, max_value=40),
)
def test_random_text_gives_the_reference_merges(texts: list[str], extra: int) -> None:
    fast, merges = _both(texts, 256 + 1 + extra, GPT4_PATTERN, [EOT])
    assert fast.merges == merges


# Chunks much longer than the fast trainer's long-chunk threshold (256 bytes), mixed with
# short ones: runs of one letter, alternations and runs broken by other letters.
LONG_PIECES = st.sampled_from(["a", "b", "ab", "aab", "aba", "bba", "abc"])


@settings(max_examples=30, deadline=None)
@given(
    runs=st.lists(
        st.tuples(LONG_PIECES, st.integers(min_value=1, max_value=400)), min_size=1, max_size=6
    ),
    separators=st.lists(st.sampled_from([" ", " a", " ab", "b", " x"]), min_size=6, max_size=6),
    extra=st.integers(min_value=1, max_value=40),
)
def test_long_chunks_give_the_reference_merges(
    runs: list[tuple[str, int]], separators: list[str], extra: int
) -> None:
    text = "".join(piece * n + sep for (piece, n), sep in zip(runs, separators, strict=False))
    text += " " + text[:300]  # the same long chunk twice: counted with weight 2
    fast, merges = _both(text, 256 + extra, GPT4_PATTERN, [])
    assert fast.merges == merges


def test_the_pair_index_counts_what_the_reference_counts() -> None:
    # More chunks than three blocks of the index (trainer.INDEX_BLOCK), of every length the
    # short path takes, with bytes from the whole range and counts from 1 to 9.
    rng = random.Random(0)
    chunks = [
        bytes(rng.choice(b"ab\x00\xff\x7f\x80") for _ in range(rng.randint(2, LONG_CHUNK)))
        for _ in range(3 * INDEX_BLOCK + 17)
    ]
    counts = [rng.randint(1, 9) for _ in chunks]
    shift = 12
    where, pair_counts = index_pairs(chunks, counts, shift)
    stats = ref.get_stats((list(c), n) for c, n in zip(chunks, counts, strict=True))
    assert pair_counts == {(a << shift) | b: n for (a, b), n in stats.items()}
    # Each chunk is listed under a pair once per occurrence, in chunk order.
    expected: dict[int, list[int]] = {}
    for i, chunk in enumerate(chunks):
        for a, b in pairwise(chunk):
            expected.setdefault((a << shift) | b, []).append(i)
    assert where == expected


def test_many_chunks_give_the_reference_merges() -> None:
    rng = random.Random(1)
    words = sorted({"".join(rng.choices("abcde", k=rng.randint(1, 8))) for _ in range(30_000)})
    assert len(words) > 2 * INDEX_BLOCK  # distinct chunks: the index takes several blocks
    fast, merges = _both(" ".join(rng.choices(words, k=40_000)), 256 + 40, GPT4_PATTERN, [])
    assert fast.merges == merges
