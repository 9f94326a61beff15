"""How a tokenizer cuts a text: the pieces of text with their ids, plain or in ANSI colours.

`uv run tokenizer show` prints this; a notebook or playground can call the same functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gpt_tokenizers.bpe import BPETokenizer
from gpt_tokenizers.protocol import Tokenizer

# Background colours cycled over pieces (256-colour ANSI, light shades under black text).
COLOURS = (153, 194, 224, 230, 189, 159)
# A UTF-8 character is at most 4 bytes; a longer undecodable run is shown as U+FFFD.
_MAX_PENDING = 8


@dataclass(frozen=True)
class Piece:
    """One span of the text and the ids that make it (several when a character is split
    over tokens: the span then shows the whole character)."""

    text: str
    ids: tuple[int, ...]


def token_pieces(tok: Tokenizer, ids: Sequence[int]) -> list[Piece]:
    """The text of `ids` cut at token boundaries, keeping split characters whole."""
    if not isinstance(tok, BPETokenizer):
        return [Piece(tok.decode([i]), (i,)) for i in ids]
    pieces: list[Piece] = []
    pending, pending_ids = b"", []
    for i in ids:
        pending += tok.token_bytes(i)
        pending_ids.append(i)
        try:
            text = pending.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.reason == "unexpected end of data" and len(pending) < _MAX_PENDING:
                continue  # the next token completes the character
            text = pending.decode("utf-8", errors="replace")
        pieces.append(Piece(text, tuple(pending_ids)))
        pending, pending_ids = b"", []
    if pending:
        pieces.append(Piece(pending.decode("utf-8", errors="replace"), tuple(pending_ids)))
    return pieces


def ansi256_hex(code: int) -> str:
    """The #rrggbb colour of a 256-colour ANSI code from the 6x6x6 cube (16..231), so a web
    page can show pieces in the same colours as the terminal."""
    if not 16 <= code <= 231:
        raise ValueError(f"ANSI colour {code} is not in the 6x6x6 cube (16..231)")
    levels = (0, 95, 135, 175, 215, 255)
    n = code - 16
    return "#" + "".join(f"{levels[c]:02x}" for c in (n // 36, n // 6 % 6, n % 6))


def format_pieces(pieces: Sequence[Piece], color: bool = True, show_ids: bool = False) -> str:
    """The pieces joined: each on its own background colour, or separated by '|'.

    `show_ids` follows each piece with its ids in brackets, e.g. `hello[31373]`.
    """
    texts = [p.text + (f"[{' '.join(map(str, p.ids))}]" if show_ids else "") for p in pieces]
    if not color:
        return "|".join(texts)
    out = []
    for k, text in enumerate(texts):
        code = COLOURS[k % len(COLOURS)]
        # Colour each line separately so a newline does not smear the colour to the margin.
        out.append("\n".join(f"\x1b[30;48;5;{code}m{line}\x1b[0m" for line in text.split("\n")))
    return "".join(out)


def describe(text: str, ids: Sequence[int]) -> str:
    """`N characters, B bytes, T tokens: R bytes per token` for a text and its ids."""
    n_bytes = len(text.encode("utf-8"))
    ratio = n_bytes / len(ids) if ids else 0.0
    return (
        f"{len(text)} characters, {n_bytes} bytes, {len(ids)} tokens: {ratio:.2f} bytes per token"
    )
