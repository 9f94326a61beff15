"""Long runs of one letter: the fast trainer learns the reference merges, and quickly.

A run of one letter is a single chunk under the GPT-4 pattern, however long; the trainer
keeps chunks over 256 bytes as runs, so these inputs take the paths a megabyte run takes.
"""

from __future__ import annotations

import random
import time
import warnings

import pytest
from gpt_tokenizers import BPETokenizer
from gpt_tokenizers import reference_trainer as ref
from gpt_tokenizers.patterns import GPT4_PATTERN
from hypothesis import given, settings
from hypothesis import strategies as st


def _same_merges(text: str, num_merges: int) -> list[tuple[int, int]]:
    """The fast trainer's merges, checked to equal the reference trainer's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # runs have few distinct pairs: both stop early
        fast = BPETokenizer.train(text, 256 + num_merges, pattern=GPT4_PATTERN, processes=1)
    merges = ref.train(text, num_merges, GPT4_PATTERN)
    assert fast.merges == merges
    return merges


@pytest.mark.parametrize("n", [257, 258, 300, 301, 1024, 1025, 4095, 4096])
def test_one_letter_run_gives_the_reference_merges(n: int) -> None:
    # Merges stop when one token is left: aa, aaaa, ... then the odd leftovers.
    merges = _same_merges("a" * n, 40)
    assert merges[0] == (97, 97)
    assert len(merges) >= n.bit_length() - 1


@pytest.mark.parametrize(
    "text",
    [
        "a" * 1000 + "b" * 999 + "ab" * 300,
        "ab" * 400 + "a" * 301 + "ba" * 200,
        "abc" * 200 + "c" * 500 + "aab" * 150,
        # A run broken once, and runs of letters that a merge turns into runs of new ids.
        "a" * 600 + "b" + "a" * 601 + "bb" + "aa" * 300,
        "aab" * 300 + "abb" * 300,
    ],
)
def test_mixed_runs_give_the_reference_merges(text: str) -> None:
    _same_merges(text, 60)


def test_runs_inside_ordinary_text_give_the_reference_merges() -> None:
    # Runs of letters, spaces, newlines and punctuation are chunks of their own under the
    # GPT-4 pattern; the same long run twice is one chunk counted twice.
    text = (
        "Some ordinary words, then " + "z" * 700 + " and more words.\n"
        "    "
        + " " * 513
        + "indented\n"
        + "\n" * 300
        + "=" * 400
        + " done "
        + "z" * 700
        + " x"
        + "zzy" * 120
        + " the end, the end."
    )
    _same_merges(text, 80)


@settings(max_examples=40, deadline=None)
@given(
    runs=st.lists(
        st.tuples(st.sampled_from("abc"), st.integers(min_value=1, max_value=700)),
        min_size=1,
        max_size=8,
    ),
    alphabet=st.sampled_from(["ab", "abc"]),
    extra=st.integers(min_value=1, max_value=40),
)
def test_random_runs_give_the_reference_merges(
    runs: list[tuple[str, int]], alphabet: str, extra: int
) -> None:
    text = "".join(letter * n for letter, n in runs if letter in alphabet) or alphabet
    _same_merges(text, extra)


def _cpu_seconds(text: str) -> float:
    best = float("inf")
    for _ in range(2):
        start = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a run of one letter runs out of pairs
            BPETokenizer.train(text, vocab_size=300, processes=1)
        best = min(best, time.process_time() - start)
    return best


@pytest.mark.parametrize("chars", [100_000, 800_000])
def test_a_run_of_one_letter_trains_as_fast_as_ordinary_text(chars: int) -> None:
    # Merging used to touch every letter of a run at every merge: 'a' * n took about
    # 15x the time of n bytes of prose. A run now costs O(1) per merge, so it stays below
    # the prose at every size (about half of it; the bound is generous for noisy CPUs).
    rng = random.Random(0)
    words = ["".join(rng.choices("etaoinshrdlu", k=rng.randint(1, 8))) for _ in range(2000)]
    prose = " ".join(rng.choices(words, k=chars // 4))[:chars]
    run, text = _cpu_seconds("a" * chars), _cpu_seconds(prose)
    assert run < 3 * text, f"'a' * {chars} took {run / text:.1f}x the time of prose"
