"""Reading and checking the tokenizer JSON files, with errors that name what is wrong."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from gpt_tokenizers.errors import TokenizerError

FORMAT_VERSION = 1


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a tokenizer JSON file into a dict; clear errors for missing, unreadable or bad JSON."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"tokenizer file not found: {p}")
    if p.is_dir():
        raise TokenizerError(f"{p} is a folder, expected a tokenizer JSON file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TokenizerError(f"{p}: not a tokenizer JSON file (not UTF-8 text)") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TokenizerError(
            f"{p}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(obj, dict):
        raise TokenizerError(f"{p}: expected a JSON object, got {type(obj).__name__}")
    version = obj.get("format_version")
    if version != FORMAT_VERSION:
        raise TokenizerError(
            f"{p}: unsupported or missing 'format_version' {version!r} (expected {FORMAT_VERSION})"
        )
    if not isinstance(obj.get("type"), str):
        raise TokenizerError(f"{p}: missing 'type' (expected 'bpe', 'char' or 'word')")
    return obj


def field(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], path: object) -> Any:
    """obj[key], checked to be of `kind` (bool is not accepted where int is expected)."""
    if key not in obj:
        raise TokenizerError(f"{path}: missing key {key!r}")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise TokenizerError(f"{path}: {key!r} must be {names}, got {type(value).__name__}")
    return value


def dumps_compact_lists(obj: dict[str, Any], list_key: str) -> str:
    """JSON with 2-space indent, but the items of `obj[list_key]` one per line."""
    head = {k: v for k, v in obj.items() if k != list_key}
    body = json.dumps(head, indent=2, ensure_ascii=False)
    items = obj[list_key]
    lines = ",\n".join("    " + json.dumps(item, ensure_ascii=False) for item in items)
    block = f'  "{list_key}": [\n{lines}\n  ]' if items else f'  "{list_key}": []'
    return body[:-2] + ",\n" + block + "\n}\n" if head else "{\n" + block + "\n}\n"
