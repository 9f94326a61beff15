"""Hugging Face byte-level BPE files (vocab.json + merges.txt, tokenizer.json) <-> BPETokenizer.

GPT-2's files store each token's bytes as a string through a fixed byte -> character map
(printable bytes stand for themselves, the others are moved to U+0100 and up), so every
token is valid JSON text. Importing reverses the map and keeps the file's ids as ranks:
for GPT-2 and for tokenizers trained by HF `tokenizers`, merge k creates id 256 + k, which
is exactly our id layout (only the order of the 256 single bytes differs, kept as
`byte_order`). Exported tokenizer.json files pre-split with our regex (a `Split`), then
map bytes with `ByteLevel`, so HF `tokenizers` cuts text exactly as tiktoken does.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from gpt_tokenizers.atomic import write_text_atomic
from gpt_tokenizers.bpe import BPETokenizer
from gpt_tokenizers.errors import TokenizerError
from gpt_tokenizers.patterns import GPT2_PATTERN, pattern_name


@cache
def byte_to_char() -> dict[int, str]:
    """GPT-2's byte -> character map: printable Latin-1 bytes keep their character."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def token_text(token: bytes) -> str:
    """The vocab.json string of a token's bytes."""
    table = byte_to_char()
    return "".join(table[b] for b in token)


def token_bytes(text: str, source: str) -> bytes:
    """The bytes of a vocab.json / merges.txt token string (errors name `source`)."""
    inverse = {c: b for b, c in byte_to_char().items()}
    try:
        return bytes(inverse[c] for c in text)
    except KeyError as exc:
        raise TokenizerError(
            f"{source}: token {text!r} has character {exc.args[0]!r}, which is not in the "
            "byte-level alphabet (expected a byte-level BPE such as GPT-2's)"
        ) from None


def _from_vocab(
    vocab: dict[str, Any],
    merges: list[tuple[str, str]],
    pattern: str,
    specials: dict[str, int],
    source: str,
) -> BPETokenizer:
    """A BPETokenizer from a byte-level vocab (string -> id) and merges (string pairs)."""
    by_id: dict[int, bytes] = {}
    for text, idx in vocab.items():
        if text in specials:
            continue
        if not isinstance(idx, int) or isinstance(idx, bool):
            raise TokenizerError(f"{source}: vocab id of {text!r} must be an integer, got {idx!r}")
        by_id[idx] = token_bytes(text, source)
    n = len(by_id)
    if sorted(by_id) != list(range(n)):
        raise TokenizerError(
            f"{source}: vocab ids must be 0..{n - 1} without gaps (special tokens after them)"
        )
    ranks = [by_id[i] for i in range(n)]
    if sorted(t[0] for t in ranks[:256] if len(t) == 1) != list(range(256)):
        raise TokenizerError(f"{source}: ids 0..255 must be the 256 single bytes")
    if len(merges) != n - 256:
        raise TokenizerError(f"{source}: {len(merges)} merges for {n - 256} merged tokens")
    index = {t: i for i, t in enumerate(ranks)}
    for k, (a, b) in enumerate(merges):
        # Our encoder merges by the rank of the result: merge k must create id 256 + k.
        made = index.get(token_bytes(a, source) + token_bytes(b, source))
        if made != 256 + k:
            raise TokenizerError(
                f"{source}: merge {k} ({a!r} {b!r}) creates id {made}, expected {256 + k}; "
                "only merge lists in vocabulary order can be imported"
            )
    tok = BPETokenizer.__new__(BPETokenizer)
    try:
        tok._setup(ranks, None, pattern, specials)
    except TokenizerError as exc:
        raise TokenizerError(f"{source}: {exc}") from None
    return tok


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TokenizerError(f"{path}: not valid JSON ({exc})") from None


def read_vocab_merges(
    vocab_path: str | os.PathLike[str],
    merges_path: str | os.PathLike[str],
    special_tokens: dict[str, int] | None = None,
) -> BPETokenizer:
    """GPT-2 style vocab.json + merges.txt; "<|endoftext|>" in the vocab becomes special."""
    vp, mp = Path(vocab_path), Path(merges_path)
    vocab = _read_json(vp)
    if not isinstance(vocab, dict):
        raise TokenizerError(f"{vp}: expected a JSON object mapping token text to ids")
    if not mp.is_file():
        raise FileNotFoundError(f"{mp}: file not found")
    merges: list[tuple[str, str]] = []
    for lineno, line in enumerate(mp.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or (lineno == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise TokenizerError(f"{mp}:{lineno}: expected 'left right', got {line[:80]!r}")
        merges.append((parts[0], parts[1]))
    specials = dict(special_tokens or {})
    if special_tokens is None and "<|endoftext|>" in vocab:
        specials["<|endoftext|>"] = vocab["<|endoftext|>"]
    return _from_vocab(vocab, merges, GPT2_PATTERN, specials, str(vp))


def _pattern_of(pre: Any, source: str) -> str:
    """Our pre-split regex for a tokenizer.json pre_tokenizer (ByteLevel, maybe after a Split)."""
    if not isinstance(pre, dict):
        raise TokenizerError(f"{source}: 'pre_tokenizer' must be a ByteLevel pre-tokenizer")
    kind = pre.get("type")
    if kind == "ByteLevel":
        if pre.get("add_prefix_space"):
            raise TokenizerError(f"{source}: pre_tokenizer add_prefix_space=true is not supported")
        if not pre.get("use_regex", True):
            raise TokenizerError(f"{source}: ByteLevel without a regex or Split is not supported")
        return GPT2_PATTERN
    if kind == "Sequence":
        steps = pre.get("pretokenizers", [])
        if (
            len(steps) == 2
            and steps[0].get("type") == "Split"
            and steps[0].get("behavior") == "Isolated"
            and not steps[0].get("invert", False)
            and "Regex" in steps[0].get("pattern", {})
            and steps[1].get("type") == "ByteLevel"
            and not steps[1].get("use_regex", True)
            and not steps[1].get("add_prefix_space", False)
        ):
            return str(steps[0]["pattern"]["Regex"])
    raise TokenizerError(
        f"{source}: pre_tokenizer {kind!r} is not supported (expected ByteLevel, or a "
        "Sequence of an isolated regex Split and ByteLevel without its regex)"
    )


def read_tokenizer_json(path: str | os.PathLike[str]) -> BPETokenizer:
    """An HF `tokenizers` tokenizer.json holding a byte-level BPE (GPT-2's or similar)."""
    p = Path(path)
    obj = _read_json(p)
    model = obj.get("model") if isinstance(obj, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE":
        raise TokenizerError(f"{p}: 'model' must be a BPE model (type: BPE)")
    if obj.get("normalizer") is not None:
        raise TokenizerError(f"{p}: a normalizer is not supported (GPT-2's has none)")
    pattern = _pattern_of(obj.get("pre_tokenizer"), str(p))
    raw_merges = model.get("merges", [])
    merges: list[tuple[str, str]] = []
    for k, m in enumerate(raw_merges):
        pair = m.split(" ") if isinstance(m, str) else m
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
        ):
            raise TokenizerError(f"{p}: model.merges[{k}] must be 'left right' or a pair")
        merges.append((pair[0], pair[1]))
    specials = {
        str(t["content"]): int(t["id"]) for t in obj.get("added_tokens", []) if t.get("special")
    }
    return _from_vocab(dict(model.get("vocab", {})), merges, pattern, specials, str(p))


def import_hf_tokenizer(path: str | os.PathLike[str]) -> BPETokenizer:
    """A tokenizer.json file, or a folder holding tokenizer.json or vocab.json + merges.txt."""
    p = Path(path)
    if p.is_dir():
        if (p / "tokenizer.json").is_file():
            return read_tokenizer_json(p / "tokenizer.json")
        if (p / "vocab.json").is_file() and (p / "merges.txt").is_file():
            return read_vocab_merges(p / "vocab.json", p / "merges.txt")
        raise FileNotFoundError(f"{p}: no tokenizer.json or vocab.json + merges.txt")
    return read_tokenizer_json(p)


def read_hf_file(path: str | os.PathLike[str]) -> BPETokenizer | None:
    """The tokenizer in an HF file (a tokenizer.json, or a vocab.json with merges.txt beside
    it), or None when `path` is not one (e.g. our own tokenizer JSON)."""
    p = Path(path)
    if not p.is_file() or p.suffix != ".json":
        return None
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # the caller's own reader reports it
    if not isinstance(obj, dict) or "format_version" in obj:
        return None
    if isinstance(obj.get("model"), dict):
        return read_tokenizer_json(p)
    if (p.parent / "merges.txt").is_file():
        return read_vocab_merges(p, p.parent / "merges.txt")
    return None


def has_hf_tokenizer(folder: str | os.PathLike[str]) -> bool:
    """Whether `folder` holds HF tokenizer files import_hf_tokenizer reads."""
    p = Path(folder)
    return (p / "tokenizer.json").is_file() or (
        (p / "vocab.json").is_file() and (p / "merges.txt").is_file()
    )


def _check_exportable(tok: BPETokenizer) -> list[str]:
    """The token strings by id; refuses what byte-level files cannot hold."""
    texts = [token_text(tok.token_bytes(i)) for i in range(256 + len(tok.merges))]
    if len(set(texts)) != len(texts):
        raise TokenizerError("two ids share the same bytes; HF vocab files cannot hold that")
    return texts


def hf_tokenizer_json(tok: BPETokenizer) -> dict[str, Any]:
    """The tokenizer.json form of `tok`: our regex Split, ByteLevel bytes, specials added."""
    texts = _check_exportable(tok)
    merges = [[texts[a], texts[b]] for a, b in tok.merges]
    added = [
        {
            "id": idx,
            "content": name,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for name, idx in sorted(tok.special_tokens.items(), key=lambda kv: kv[1])
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {"Regex": tok.pattern},
                    "behavior": "Isolated",
                    "invert": False,
                },
                {
                    "type": "ByteLevel",
                    "add_prefix_space": False,
                    "trim_offsets": True,
                    "use_regex": False,
                },
            ],
        },
        "post_processor": None,
        "decoder": {
            "type": "ByteLevel",
            "add_prefix_space": False,
            "trim_offsets": True,
            "use_regex": False,
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": {t: i for i, t in enumerate(texts)},
            "merges": merges,
        },
    }


def write_hf_files(tok: BPETokenizer, folder: str | os.PathLike[str]) -> list[Path]:
    """Write tokenizer.json, and vocab.json + merges.txt when the pattern is GPT-2's.

    vocab.json + merges.txt cannot name a pattern (readers assume GPT-2's), so for another
    pattern only tokenizer.json is written. Returns the files written.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    obj = hf_tokenizer_json(tok)
    written = [out / name for name in hf_file_names(tok)]
    write_text_atomic(written[0], json.dumps(obj, ensure_ascii=False) + "\n")
    if len(written) > 1:
        vocab = dict(obj["model"]["vocab"])
        vocab.update(tok.special_tokens)
        write_text_atomic(written[1], json.dumps(vocab, ensure_ascii=False))
        lines = ["#version: 0.2", *(f"{a} {b}" for a, b in obj["model"]["merges"])]
        write_text_atomic(written[2], "\n".join(lines) + "\n")
    return written


def hf_file_names(tok: BPETokenizer) -> list[str]:
    """The files write_hf_files writes for `tok`: vocab.json + merges.txt only for GPT-2's
    pattern, since they cannot name another."""
    if pattern_name(tok.pattern) == "gpt2":
        return ["tokenizer.json", "vocab.json", "merges.txt"]
    return ["tokenizer.json"]
