"""BPE training rules, fast vs reference encoding, special tokens and decoding."""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path

import pytest
from gpt_tokenizers import BPETokenizer, Tokenizer, TokenizerError
from gpt_tokenizers import counting as counting_module
from gpt_tokenizers import pretokenize as pretokenize_module
from gpt_tokenizers.counting import count_files, count_texts
from gpt_tokenizers.patterns import GPT2_PATTERN, GPT4_PATTERN, O200K_PATTERN
from gpt_tokenizers.pretokenize import count_text
from hypothesis import given, settings
from hypothesis import strategies as st

SAMPLE = (
    "The quick brown fox jumps over the lazy dog. Don't panic! It's 2024, isn't it?\n"
    "Ünïcödé wörds, naïve café, 東京 and 北京, emoji 👋🏽 🇫🇷 ❤️, e\u0301 combining.\n"
    "    indented   code(x, y) -> {z: 1_000_000}\n\n\n"
    "aaaaaaaaaaaaaaaa bbbbbbbb      \t\t  \n"
    * 3
    + "Numbers 1234567890 and 3.14159 and 42nd.\r\nWindows line\r\n"
)

# Text built from pieces that stress the pre-split and the byte merges.
TRICKY = st.lists(
    st.one_of(
        st.text(max_size=12),
        st.sampled_from(
            [
                "👋",
                "👋🏽",
                "🇫🇷",
                "e\u0301",
                "a\u0308\u0301",
                " ",
                "   ",
                "\n",
                "\r\n",
                "\t",
                "\u00a0",
                "aaaaaaaaaaaaaaaaaaaa",
                "        ",
                "'s",
                "'LL",
                "123456",
                "東京",
                "<|endoftext|",
            ]
        ),
    ),
    max_size=30,
).map("".join)


def _corpus(repo_root: Path) -> str:
    path = repo_root.parent / "shared" / "data" / "tinyshakespeare.txt"
    text = path.read_text(encoding="utf-8")[:200_000] if path.exists() else ""
    return text + SAMPLE * 20


REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def tok() -> BPETokenizer:
    return BPETokenizer.train(_corpus(REPO_ROOT), vocab_size=700, special_tokens=["<|endoftext|>"])


def test_wikipedia_example() -> None:
    tok = BPETokenizer.train("aaabdaaabac", vocab_size=256 + 3)
    assert tok.merges == [(97, 97), (97, 98), (256, 257)]
    assert [tok.token_bytes(i) for i in (256, 257, 258)] == [b"aa", b"ab", b"aaab"]
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert tok.encode_reference("aaabdaaabac") == [258, 100, 258, 97, 99]


def test_ties_go_to_the_smallest_pair() -> None:
    # Every pair occurs once: the smallest (left, right) ids must win, in order.
    tok = BPETokenizer.train("dcba", vocab_size=257, pattern=r".+")
    assert tok.merges == [(98, 97)]  # ("b","a") < ("c","b") < ("d","c")
    tok = BPETokenizer.train(["zy", "xw", "zy"], vocab_size=258, pattern=r".+")
    assert tok.merges == [(122, 121), (120, 119)]  # most frequent first, then the tie rule


def test_training_is_deterministic(repo_root: Path) -> None:
    text = _corpus(repo_root)[:50_000]
    a = BPETokenizer.train(text, vocab_size=400).merges
    b = BPETokenizer.train(list(reversed(text.splitlines(keepends=True))), vocab_size=400)
    c = BPETokenizer.train(text.splitlines(keepends=True), vocab_size=400)
    assert b.merges == c.merges  # order of the texts does not matter
    assert a == BPETokenizer.train(text, vocab_size=400).merges


def test_merges_match_rustbpe(repo_root: Path) -> None:
    rustbpe = pytest.importorskip("rustbpe")
    text = _corpus(repo_root)
    ours = BPETokenizer.train(text, vocab_size=400)
    ref = rustbpe.Tokenizer()
    ref.train_from_iterator(iter([text]), 400, pattern=GPT4_PATTERN)
    theirs = {int(i): bytes(t) for t, i in ref.get_mergeable_ranks()}
    assert [ours.token_bytes(i) for i in range(400)] == [theirs[i] for i in range(400)]


def test_overlapping_runs_count_like_a_sliding_window() -> None:
    # "aaaa" has 3 windows (a, a); merging gives [aa, aa] and then one (aa, aa) window.
    tok = BPETokenizer.train("aaaa", vocab_size=258)
    assert tok.merges == [(97, 97), (256, 256)]
    assert tok.encode("aaaaa") == [257, 97]


def test_merges_never_cross_chunks() -> None:
    tok = BPETokenizer.train("ab ab ab ab", vocab_size=258)
    assert all(b"b " not in tok.token_bytes(i) for i in range(tok.vocab_size))
    assert all(b"b a" not in tok.token_bytes(i) for i in range(tok.vocab_size))


def test_stops_early_with_a_warning_when_data_runs_out() -> None:
    with pytest.warns(UserWarning, match="stopped after 3 merges") as caught:
        tok = BPETokenizer.train("abcd", vocab_size=1000, special_tokens=["<|endoftext|>"])
    assert caught[0].filename == __file__  # the warning names the caller's line
    assert tok.vocab_size == 256 + 3 + 1
    assert tok.eot_id == 259


@pytest.mark.parametrize("size", [0, 100, 255])
def test_vocab_size_below_256_is_an_error(size: int) -> None:
    with pytest.raises(TokenizerError, match="at least 256"):
        BPETokenizer.train("hello", vocab_size=size)


def test_vocab_size_must_leave_room_for_special_tokens() -> None:
    with pytest.raises(TokenizerError, match="at least 257"):
        BPETokenizer.train("hello", vocab_size=256, special_tokens=["<|endoftext|>"])


def test_bad_pattern_and_special_tokens_are_errors() -> None:
    with pytest.raises(TokenizerError, match="valid regex"):
        BPETokenizer.train("hello", vocab_size=300, pattern="([a-")
    with pytest.raises(TokenizerError, match="more than once"):
        BPETokenizer.train("hello", vocab_size=300, special_tokens=["<x>", "<x>"])
    with pytest.raises(TokenizerError, match="must be strings"):
        BPETokenizer.train([b"bytes"], vocab_size=300)  # type: ignore[list-item]


def test_builtin_patterns_are_tiktokens(monkeypatch: pytest.MonkeyPatch) -> None:
    from tiktoken_ext import openai_public  # type: ignore[import-untyped]

    # Read only the pattern strings: skip downloading the rank files.
    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *a, **k: {})
    expected = {
        "gpt2": openai_public.r50k_base()["pat_str"],
        "gpt4": openai_public.cl100k_base()["pat_str"],
        "o200k": openai_public.o200k_base()["pat_str"],
    }
    assert expected == {"gpt2": GPT2_PATTERN, "gpt4": GPT4_PATTERN, "o200k": O200K_PATTERN}


@pytest.mark.parametrize("pattern", ["gpt2", "gpt4", "o200k", r"\S+|\s+"])
def test_each_pattern_trains_and_round_trips(pattern: str) -> None:
    tok = BPETokenizer.train(SAMPLE * 5, vocab_size=320, pattern=pattern)
    ids = tok.encode(SAMPLE)
    assert tok.decode(ids) == SAMPLE
    assert ids == tok.encode_reference(SAMPLE)


@pytest.mark.filterwarnings("ignore:training stopped")
def test_special_token_text_is_not_learned() -> None:
    text = "<|endoftext|>".join(["hello there"] * 50)
    tok = BPETokenizer.train(text, vocab_size=300, special_tokens=["<|endoftext|>"])
    assert all(b"<|" not in tok.token_bytes(i) for i in range(tok.vocab_size - 1))


def test_special_tokens_raise_by_default_and_encode_when_allowed(tok: BPETokenizer) -> None:
    text = "hello<|endoftext|>world"
    eot = tok.eot_id
    assert eot == tok.vocab_size - 1
    with pytest.raises(TokenizerError, match="special token '<\\|endoftext\\|>'"):
        tok.encode(text)
    with pytest.raises(TokenizerError, match="special token"):
        tok.encode_reference(text)
    allowed = tok.encode(text, allowed_special={"<|endoftext|>"})
    assert allowed.count(eot) == 1
    assert tok.encode(text, allowed_special="all") == allowed
    assert tok.encode_reference(text, allowed_special="all") == allowed
    assert tok.decode(allowed) == text
    plain = tok.encode_ordinary(text)
    assert eot not in plain
    assert tok.decode(plain) == text
    assert tok.encode(text, disallowed_special=()) == plain
    with pytest.raises(TokenizerError, match="not special tokens"):
        tok.encode(text, allowed_special={"<|nope|>"})
    with pytest.raises(TokenizerError, match="special token"):
        tok.encode_batch(["fine", text])


def test_encode_batch_matches_encode(tok: BPETokenizer) -> None:
    texts = [SAMPLE[i : i + 50] for i in range(0, len(SAMPLE), 37)]
    assert tok.encode_batch(texts) == [tok.encode(t) for t in texts]


def test_decode_split_character(tok: BPETokenizer) -> None:
    ids = tok.encode("👋")
    assert len(ids) > 1  # 4 bytes, not merged in this small vocabulary
    partial = ids[:-1]
    assert tok.decode_bytes(partial) == "👋".encode()[: len(tok.decode_bytes(partial))]
    assert "\ufffd" in tok.decode(partial)
    with pytest.raises(TokenizerError, match="UTF-8"):
        tok.decode(partial, errors="strict")
    assert b"".join(tok.token_bytes(i) for i in ids) == "👋".encode()


def test_unknown_ids_are_errors(tok: BPETokenizer) -> None:
    with pytest.raises(TokenizerError, match="unknown token id 99999"):
        tok.decode([1, 99999])
    with pytest.raises(TokenizerError, match="unknown token id -1"):
        tok.decode([-1])


def test_is_a_tokenizer(tok: BPETokenizer) -> None:
    assert isinstance(tok, Tokenizer)
    assert tok.encoding.n_vocab == tok.vocab_size


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(), TRICKY))
def test_round_trip_and_fast_equals_reference(tok: BPETokenizer, text: str) -> None:
    ids = tok.encode_ordinary(text)
    assert tok.decode(ids) == text
    assert tok.decode_bytes(ids) == text.encode("utf-8")
    if "<|endoftext|>" not in text:
        assert tok.encode_reference(text) == ids


@settings(max_examples=60, deadline=None)
@given(text=TRICKY, pattern=st.sampled_from(["gpt2", "o200k"]))
def test_fast_equals_reference_other_patterns(text: str, pattern: str) -> None:
    tok = BPETokenizer.train(SAMPLE, vocab_size=300, pattern=pattern)
    assert tok.encode_reference(text) == tok.encode_ordinary(text)


def test_fast_equals_reference_on_tinyshakespeare(repo_root: Path, tok: BPETokenizer) -> None:
    path = repo_root.parent / "shared" / "data" / "tinyshakespeare.txt"
    if not path.exists():
        pytest.skip(f"{path} not present")
    text = path.read_text(encoding="utf-8")
    ids = tok.encode(text)
    assert ids == tok.encode_reference(text)
    assert tok.decode(ids) == text


# ---- counting: pieces, files and processes give the same counts ---------------------------


@settings(max_examples=100, deadline=None)
@given(
    lines=st.lists(
        st.one_of(TRICKY, st.sampled_from(["x\ny", "a.\nb", "  \n", "z\n"])), max_size=40
    ),
    pattern=st.sampled_from([GPT2_PATTERN, GPT4_PATTERN, O200K_PATTERN]),
)
def test_safe_pieces_do_not_change_counts(lines: list[str], pattern: str) -> None:
    text = "\n".join(lines)
    whole = count_text(text, pattern)
    pieces = list(pretokenize_module.safe_pieces(text, max_chars=5))
    assert "".join(pieces) == text
    parts = sum((count_text(p, pattern) for p in pieces), start=type(whole)())
    assert parts == whole


def test_files_and_processes_give_the_same_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_root: Path
) -> None:
    text = _corpus(repo_root)[:120_000]
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    expected = count_text(text, GPT4_PATTERN)
    monkeypatch.setattr(counting_module, "RANGE_BYTES", 10_000)
    monkeypatch.setattr(counting_module, "PIECE_CHARS", 10_000)
    monkeypatch.setattr(counting_module, "PARALLEL_MIN", 0)
    assert count_files([path], GPT4_PATTERN, processes=1) == expected
    assert count_files([path], GPT4_PATTERN, processes=2) == expected
    assert count_texts(text, GPT4_PATTERN, processes=2) == expected
    lines = text.splitlines(keepends=True)
    by_line = type(expected)()
    for line in lines:
        by_line.update(count_text(line, GPT4_PATTERN))
    assert count_texts(iter(lines), GPT4_PATTERN, processes=2) == by_line
    a = BPETokenizer.train_files([path], vocab_size=400, processes=2)
    b = BPETokenizer.train(text, vocab_size=400, processes=1)
    assert a.merges == b.merges


def test_train_files_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        BPETokenizer.train_files([tmp_path / "missing.txt"], vocab_size=300)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"hello \xff\xfe world")
    with pytest.raises(TokenizerError, match="not valid UTF-8 at byte 6"):
        BPETokenizer.train_files(bad, vocab_size=300)
    with pytest.raises(TokenizerError, match="no training files"):
        BPETokenizer.train_files([], vocab_size=300)


def test_progress_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tok = BPETokenizer.train(SAMPLE, vocab_size=300, verbose=True)
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout stays clean for the command's own output
    assert "counting chunks" in captured.err
    assert "unique chunks" in captured.err
    assert "merges: 100%" in captured.err
    assert f"{len(tok.merges)}/44" in captured.err
    BPETokenizer.train(SAMPLE, vocab_size=300)
    assert capsys.readouterr().err == ""


def test_file_progress_counts_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.txt"
    path.write_text("hello world, hello there\n" * 40, encoding="utf-8")
    BPETokenizer.train_files(path, vocab_size=270, verbose=True)
    err = capsys.readouterr().err
    assert "counting chunks: 100%" in err
    assert "1.00k/1.00k" in err  # 1000 bytes, scaled
    BPETokenizer.train_files(path, vocab_size=270)
    assert capsys.readouterr().err == ""


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(
        st.one_of(TRICKY, st.sampled_from(["x\ny", "a.\nb", "  \n", "<|endoftext|>"])), max_size=60
    )
)
def test_threaded_encode_of_long_text_equals_one_call(tok: BPETokenizer, lines: list[str]) -> None:
    from gpt_tokenizers import bpe as bpe_module

    text = "\n".join(lines)
    saved = bpe_module.PARALLEL_ENCODE_CHARS, tok.num_threads
    bpe_module.PARALLEL_ENCODE_CHARS, tok.num_threads = 8, 3  # cut even short texts
    try:
        assert tok.encode_ordinary(text) == tok.encoding.encode_ordinary(text)
        assert tok.encode(text, allowed_special="all") == tok.encoding.encode(
            text, allowed_special="all"
        )
        if "<|endoftext|>" in text:
            with pytest.raises(TokenizerError, match="special token"):
                tok.encode(text)
    finally:
        bpe_module.PARALLEL_ENCODE_CHARS, tok.num_threads = saved


def test_file_ranges_end_when_only_the_overlap_is_left(tmp_path: Path) -> None:
    # A file 2 bytes longer than one piece, with no safe cut: the scan used to re-read the
    # same 2-byte overlap forever. Run it in a thread so a regression fails, not hangs.
    path = tmp_path / "short.txt"
    path.write_bytes(b"abcdefghij\nk")
    result: list[tuple[int, int]] = []
    worker = threading.Thread(
        target=lambda: result.extend(counting_module._file_ranges(str(path), 12, 10)),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "_file_ranges did not finish"
    assert result == [(0, 12)]


@pytest.mark.parametrize("unit", ["a", "ab"])
def test_training_time_grows_linearly_on_one_long_chunk(unit: str) -> None:
    # A run of one letter is a single chunk of the pre-split. Merging used to splice the
    # chunk once per occurrence, so 4x the input took ~16x the time; linear is ~4x.
    def cpu_seconds(chars: int) -> float:
        best = float("inf")
        for _ in range(2):
            start = time.process_time()
            BPETokenizer.train(unit * (chars // len(unit)), vocab_size=266, processes=1)
            best = min(best, time.process_time() - start)
        return best

    small, large = cpu_seconds(40_000), cpu_seconds(160_000)
    assert large < 8 * small, f"4x the input took {large / small:.1f}x the time"
