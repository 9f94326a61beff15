"""CharTokenizer and WordTokenizer: vocabulary, unknown policy, BOS/EOS, files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gpt_tokenizers import CharTokenizer, Tokenizer, TokenizerError, WordTokenizer
from hypothesis import given
from hypothesis import strategies as st

CORPUS = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"


def test_char_vocab_is_sorted_characters() -> None:
    tok = CharTokenizer.from_text(CORPUS)
    chars = sorted(set(CORPUS))
    assert tok.vocab_size == len(chars)
    assert tok.encode("Speak") == [chars.index(c) for c in "Speak"]
    assert tok.eot_id is None
    assert isinstance(tok, Tokenizer)


@given(text=st.text(alphabet=sorted(set(CORPUS))))
def test_char_round_trip(text: str) -> None:
    tok = CharTokenizer.from_text(CORPUS)
    assert tok.decode(tok.encode(text)) == text


def test_char_unknown_policies() -> None:
    strict = CharTokenizer.from_text(CORPUS)
    with pytest.raises(TokenizerError, match=r"'Z' .* is not in the vocabulary"):
        strict.encode("Zap")
    skip = CharTokenizer.from_text(CORPUS, unknown="skip")
    assert skip.decode(skip.encode("Zap")) == "ap"
    replace = CharTokenizer.from_text(CORPUS, unknown="replace")
    assert replace.unk_id == replace.vocab_size - 1
    assert replace.encode("Zap")[0] == replace.unk_id
    assert replace.decode(replace.encode("Zap")) == "<unk>ap"
    with pytest.raises(TokenizerError, match="policy 'maybe'"):
        CharTokenizer.from_text(CORPUS, unknown="maybe")  # type: ignore[arg-type]


def test_char_bos_eos() -> None:
    tok = CharTokenizer.from_text(CORPUS, bos=True, eos=True)
    n = len(set(CORPUS))
    assert (tok.bos_id, tok.eot_id, tok.vocab_size) == (n, n + 1, n + 2)
    ids = tok.encode("hear", add_bos=True, add_eos=True)
    assert ids[0] == tok.bos_id
    assert ids[-1] == tok.eot_id
    assert tok.decode(ids) == "<bos>hear<eos>"
    with pytest.raises(TokenizerError, match="no <eos> token"):
        CharTokenizer.from_text(CORPUS).encode("hear", add_eos=True)


def test_char_save_load(tmp_path: Path) -> None:
    tok = CharTokenizer.from_text(CORPUS + "é👋", unknown="replace", eos=True)
    path = tmp_path / "char.json"
    tok.save(path)
    loaded = CharTokenizer.load(path)
    assert loaded.encode("speak é👋 Z") == tok.encode("speak é👋 Z")
    assert loaded.special_tokens == tok.special_tokens
    obj = json.loads(path.read_text(encoding="utf-8"))
    obj["chars"][2] = "ab"
    path.write_text(json.dumps(obj))
    with pytest.raises(TokenizerError, match=r"'chars'\[2\] must be one character"):
        CharTokenizer.load(path)
    obj["chars"][2] = obj["chars"][3]
    path.write_text(json.dumps(obj))
    with pytest.raises(TokenizerError, match="more than once"):
        CharTokenizer.load(path)


def test_char_empty_corpus_is_an_error() -> None:
    with pytest.raises(TokenizerError, match="empty text"):
        CharTokenizer.from_text("")


def test_word_keeps_the_most_frequent() -> None:
    tok = WordTokenizer.from_text(CORPUS, vocab_size=6)
    # 5 words + <unk>; ties broken alphabetically.
    assert tok.vocab_size == 6
    assert tok.unk_id == 5
    assert tok.encode("proceed") == [tok.unk_id]
    full = WordTokenizer.from_text(CORPUS, vocab_size=1000)
    assert full.decode(full.encode(CORPUS)) == CORPUS
    assert full.decode(full.encode("hear me, Caesar.")) == "hear me, <unk>."
    assert isinstance(full, Tokenizer)


def test_word_order_and_specials(tmp_path: Path) -> None:
    tok = WordTokenizer.from_text("b a b c b a", vocab_size=5, eos=True)
    # words by frequency: " " (5), "b" (3), "a" (2); then <unk>, <eos>.
    assert tok.decode([0, 1, 2]) == " ba"
    assert tok.vocab_size == 5
    assert tok.eot_id == 4
    assert tok.encode("b c", add_eos=True) == [1, 0, 3, 4]
    tok.save(tmp_path / "w.json")
    loaded = WordTokenizer.load(tmp_path / "w.json")
    assert loaded.encode("b c a") == tok.encode("b c a")
    with pytest.raises(TokenizerError, match="too small"):
        WordTokenizer.from_text("a b", vocab_size=1)


def test_word_load_checks_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    WordTokenizer.from_text(CORPUS, vocab_size=20).save(path)
    obj = json.loads(path.read_text())
    obj["vocab_size"] = 3
    path.write_text(json.dumps(obj))
    with pytest.raises(TokenizerError, match="'vocab_size' is 3"):
        WordTokenizer.load(path)
    obj["eos"] = "yes"
    path.write_text(json.dumps(obj))
    with pytest.raises(TokenizerError, match="'eos' must be bool"):
        WordTokenizer.load(path)


def test_unknown_ids_are_errors() -> None:
    tok = CharTokenizer.from_text("ab")
    with pytest.raises(TokenizerError, match="unknown token id 2"):
        tok.decode([0, 2])
