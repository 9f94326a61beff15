"""save/load JSON, tiktoken rank files, load_tokenizer, and errors for bad files."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from gpt_tokenizers import (
    BPETokenizer,
    CharTokenizer,
    TokenizerError,
    WordTokenizer,
    load_tokenizer,
)

TEXT = (
    "It was the best of times, it was the worst of times; naïve café 東京 👋🏽.\n" * 40
    + "<|endoftext|> numbers 12345 and spaces   \n"
)


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return BPETokenizer.train(TEXT, vocab_size=318, special_tokens=["<|endoftext|>", "<|pad|>"])


def test_json_round_trip(bpe: BPETokenizer, tmp_path: Path) -> None:
    path = tmp_path / "tok.json"
    bpe.save(path)
    obj = json.loads(path.read_text(encoding="utf-8"))
    assert obj["type"] == "bpe"
    assert obj["format_version"] == 1
    assert obj["pattern_name"] == "gpt4"
    assert obj["special_tokens"] == {"<|endoftext|>": 316, "<|pad|>": 317}
    loaded = BPETokenizer.load(path)
    assert loaded.merges == bpe.merges
    assert loaded.special_tokens == bpe.special_tokens
    assert loaded.pattern == bpe.pattern
    assert loaded.encode(TEXT, allowed_special="all") == bpe.encode(TEXT, allowed_special="all")
    again = load_tokenizer(path)
    assert isinstance(again, BPETokenizer)
    assert again.merges == bpe.merges


def test_merges_are_one_per_line(bpe: BPETokenizer, tmp_path: Path) -> None:
    path = tmp_path / "tok.json"
    bpe.save(path)
    lines = path.read_text().splitlines()
    a, b = bpe.merges[0]
    assert f"    [{a}, {b}]," in lines


def test_tiktoken_round_trip(bpe: BPETokenizer, tmp_path: Path) -> None:
    path = tmp_path / "tok.tiktoken"
    bpe.save_tiktoken(path)
    lines = path.read_text().splitlines()
    assert len(lines) == 256 + len(bpe.merges)
    token, rank = lines[300].split()
    assert base64.b64decode(token) == bpe.token_bytes(300)
    assert rank == "300"
    loaded = BPETokenizer.from_tiktoken_file(
        path, pattern="gpt4", special_tokens=["<|endoftext|>", "<|pad|>"]
    )
    assert loaded.merges == bpe.merges  # recovered from the ranks alone
    assert loaded.special_tokens == bpe.special_tokens
    assert loaded.encode(TEXT, allowed_special="all") == bpe.encode(TEXT, allowed_special="all")
    assert loaded.encode_reference(TEXT, "all") == loaded.encode(TEXT, allowed_special="all")
    # tiktoken's own reader agrees with the file we wrote.
    from tiktoken.load import load_tiktoken_bpe

    ranks = load_tiktoken_bpe(str(path))
    assert ranks == {bpe.token_bytes(i): i for i in range(256 + len(bpe.merges))}


def test_rank_file_with_permuted_bytes_and_fixed_special_ids(
    bpe: BPETokenizer, tmp_path: Path
) -> None:
    # Like cl100k_base: ranks 0..255 are the single bytes in another order.
    order = list(range(255, -1, -1))
    perm = {b: i for i, b in enumerate(order)}  # byte value -> new id

    def remap(t: int) -> int:
        return perm[t] if t < 256 else t

    vocab = [bytes([b]) for b in order] + [bpe.token_bytes(i) for i in range(256, 316)]
    path = tmp_path / "perm.tiktoken"
    path.write_text("".join(f"{base64.b64encode(t).decode()} {i}\n" for i, t in enumerate(vocab)))
    tok = BPETokenizer.from_tiktoken_file(path, special_tokens={"<|endoftext|>": 400})
    assert tok.vocab_size == 401
    assert tok.eot_id == 400
    assert tok.merges == [(remap(a), remap(b)) for a, b in bpe.merges]
    text = TEXT.replace("<|endoftext|>", "")
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert ids == [remap(i) for i in bpe.encode(text)]
    assert tok.encode_reference(text) == ids
    # Saved as JSON, the byte order comes along.
    tok.save(tmp_path / "perm.json")
    back = BPETokenizer.load(tmp_path / "perm.json")
    assert back.encode(text) == ids
    assert back.special_tokens == {"<|endoftext|>": 400}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("not base64!! 0\n", ":1: expected 'base64-token rank'"),
        ("QQ== 0\nQQ== x\n", ":2: expected"),
        ("QQ== 0\nQg== 0\n", "rank 0 appears twice"),
        ("QQ== 0\n", "at least 256"),
    ],
)
def test_bad_rank_files(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.tiktoken"
    path.write_text(content)
    with pytest.raises(TokenizerError, match=match):
        BPETokenizer.from_tiktoken_file(path)


def test_rank_file_with_a_gap(tmp_path: Path) -> None:
    lines = [f"{base64.b64encode(bytes([i])).decode()} {i}" for i in range(256)]
    lines.append(f"{base64.b64encode(b'ab').decode()} 257")
    path = tmp_path / "gap.tiktoken"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TokenizerError, match="256 is missing"):
        BPETokenizer.from_tiktoken_file(path)


def test_missing_files() -> None:
    with pytest.raises(FileNotFoundError, match="tokenizer file not found"):
        load_tokenizer("no/such/tok.json")
    with pytest.raises(FileNotFoundError, match="rank file not found"):
        BPETokenizer.from_tiktoken_file("no/such.tiktoken")


def _edited(bpe: BPETokenizer, tmp_path: Path, edit: Any) -> Path:
    obj = bpe.to_dict()
    edit(obj)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(obj))
    return path


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda o: o.pop("merges"), "missing key 'merges'"),
        (lambda o: o.update(merges="x"), "'merges' must be list"),
        (lambda o: o["merges"].__setitem__(3, [1]), r"'merges'\[3\] must be a pair"),
        (lambda o: o["merges"].__setitem__(0, [999, 1]), "merge 0 .* does not exist yet"),
        (lambda o: o.update(pattern="([a-"), "'pattern'.*valid regex"),
        (lambda o: o.update(format_version=7), "format_version"),
        (lambda o: o.update(type="char"), "is a 'char' tokenizer"),
        (lambda o: o.update(vocab_size=5), "'vocab_size' is 5"),
        (lambda o: o.update(special_tokens={"<x>": 3}), "special ids must be integers >= 316"),
        (lambda o: o.update(special_tokens=["<x>"]), "'special_tokens' must map"),
        (lambda o: o.update(byte_order=[0, 1]), "'byte_order'"),
    ],
)
def test_corrupt_json_names_the_problem(
    bpe: BPETokenizer, tmp_path: Path, edit: Any, match: str
) -> None:
    path = _edited(bpe, tmp_path, edit)
    with pytest.raises(TokenizerError, match=match):
        BPETokenizer.load(path)


def test_not_json_at_all(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"format_version": 1, "type": "bpe", "merges": [[1, 2],')
    with pytest.raises(TokenizerError, match=r"broken.json: not valid JSON \(line 1"):
        load_tokenizer(path)
    path.write_text("[1, 2]")
    with pytest.raises(TokenizerError, match="expected a JSON object"):
        load_tokenizer(path)
    path.write_text('{"format_version": 1, "type": "sentencepiece"}')
    with pytest.raises(TokenizerError, match="unknown tokenizer type 'sentencepiece'"):
        load_tokenizer(path)
    with pytest.raises(TokenizerError, match="is a folder"):
        load_tokenizer(tmp_path)


def test_load_tokenizer_dispatches_on_type(tmp_path: Path) -> None:
    char = CharTokenizer.from_text("hello", eos=True)
    word = WordTokenizer.from_text("hello world", vocab_size=10)
    char.save(tmp_path / "c.json")
    word.save(tmp_path / "w.json")
    assert isinstance(load_tokenizer(tmp_path / "c.json"), CharTokenizer)
    assert isinstance(load_tokenizer(tmp_path / "w.json"), WordTokenizer)
    for name in ("c.json", "w.json"):
        assert "type" in json.loads((tmp_path / name).read_text())


def test_import_does_not_pull_in_torch() -> None:
    code = "import sys, gpt_tokenizers; print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
