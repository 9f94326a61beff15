"""Pre-split regex patterns: text is cut into chunks with one of these before BPE.

The built-in strings are exactly the ones tiktoken uses for its GPT-2 (r50k), GPT-4
(cl100k) and o200k encodings, so training and fast encoding split text identically.
"""

from __future__ import annotations

import functools
import re

import regex

from gpt_tokenizers.errors import TokenizerError

GPT2_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
)

GPT4_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)

O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

PATTERNS: dict[str, str] = {"gpt2": GPT2_PATTERN, "gpt4": GPT4_PATTERN, "o200k": O200K_PATTERN}


# On text of ASCII characters alone, each built-in pattern has a twin in the syntax of the
# standard library's `re`, whose calls cost about half of a `regex` call or less on a short
# piece (counting calls it once per distinct word). In ASCII, \p{L} is [A-Za-z], \p{N}
# is [0-9], o200k's upper- and lower-case classes are [A-Z] and [a-z] (no ASCII character
# is Lt, Lm, Lo or M), and \s is spelled out: `re`'s \s is str.isspace, which also takes
# \x1c-\x1f, and those are not the Unicode White_Space that `regex`'s \s matches.
_SPACE = r"\t\n\x0b\x0c\r "
_ASCII_SPELLING = [  # (regex syntax, ASCII-only `re` syntax), replaced in this order
    (r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]", "[A-Z]"),
    (r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]", "[a-z]"),
    (r"[^\r\n\p{L}\p{N}]", r"[^\r\nA-Za-z0-9]"),
    (r"[^\s\p{L}\p{N}]", f"[^{_SPACE}A-Za-z0-9]"),
    (r"\p{L}", "[A-Za-z]"),
    (r"\p{N}", "[0-9]"),
    (r"\S", f"[^{_SPACE}]"),
    (r"\s", f"[{_SPACE}]"),
]


@functools.cache
def ascii_twin(pattern: str) -> re.Pattern[str] | None:
    """The built-in `pattern` for ASCII-only text, compiled with `re` (see above): on such
    text it finds exactly the chunks the pattern does. None for a custom pattern."""
    if pattern not in PATTERNS.values():
        return None
    for unicode_class, ascii_class in _ASCII_SPELLING:
        pattern = pattern.replace(unicode_class, ascii_class)
    return re.compile(pattern)


def resolve_pattern(pattern: str) -> str:
    """Return the regex for a built-in name (gpt2, gpt4, o200k) or check and return a custom one."""
    if pattern in PATTERNS:
        return PATTERNS[pattern]
    if not pattern:
        raise TokenizerError("pattern is empty: expected gpt2, gpt4, o200k or a regex")
    try:
        regex.compile(pattern)
    except regex.error as exc:
        raise TokenizerError(
            f"pattern {pattern!r} is neither a built-in name (gpt2, gpt4, o200k) "
            f"nor a valid regex: {exc}"
        ) from None
    return pattern


def pattern_name(pattern: str) -> str | None:
    """The built-in name of a pattern string, or None for a custom one."""
    for name, value in PATTERNS.items():
        if value == pattern:
            return name
    return None
