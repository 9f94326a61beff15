"""Token rendering: pieces of text with their ids, plain or coloured."""

from __future__ import annotations

import re

import pytest
from gpt_tokenizers import BPETokenizer, CharTokenizer
from gpt_tokenizers.render import COLOURS, ansi256_hex, describe, format_pieces, token_pieces


def test_pieces_rebuild_the_text_and_keep_split_characters_whole() -> None:
    tok = BPETokenizer()  # bytes only: "👋" is four tokens
    text = "hi 👋!"
    ids = tok.encode(text)
    pieces = token_pieces(tok, ids)
    assert "".join(p.text for p in pieces) == text
    assert [i for p in pieces for i in p.ids] == ids
    wave = next(p for p in pieces if p.text == "👋")
    assert len(wave.ids) == 4


def test_char_tokenizer_gives_one_piece_per_id() -> None:
    tok = CharTokenizer.from_text("abc")
    pieces = token_pieces(tok, tok.encode("cab"))
    assert [(p.text, p.ids) for p in pieces] == [("c", (2,)), ("a", (0,)), ("b", (1,))]


def test_format_plain_coloured_and_with_ids() -> None:
    tok = CharTokenizer.from_text("ab\n")
    pieces = token_pieces(tok, tok.encode("a\nb"))
    assert format_pieces(pieces, color=False) == "a|\n|b"
    assert format_pieces(pieces, color=False, show_ids=True) == "a[1]|\n[0]|b[2]"
    coloured = format_pieces(pieces)
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == "a\nb"
    assert "\n\x1b" in coloured  # a newline is never inside a coloured span


def test_describe() -> None:
    assert describe("añ", [1, 2]) == "2 characters, 3 bytes, 2 tokens: 1.50 bytes per token"
    assert describe("", []).endswith("0 tokens: 0.00 bytes per token")


def test_the_web_colours_are_the_terminals() -> None:
    # xterm's cube: 16 black, 231 white, 153 a light blue (0xaf, 0xd7, 0xff).
    assert [ansi256_hex(c) for c in (16, 231, 153)] == ["#000000", "#ffffff", "#afd7ff"]
    assert len({ansi256_hex(c) for c in COLOURS}) == len(COLOURS)
    with pytest.raises(ValueError, match="not in the 6x6x6 cube"):
        ansi256_hex(7)
