"""Loss / perplexity / bits per byte over non-overlapping windows, on a tiny random GPT."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from gpt_core import GPT, GPTConfig
from gpt_eval import EvalError
from gpt_eval.evaluate import evaluate_ids, read_split_tokens, read_text_tokens, windows


def byte_decode(ids: Sequence[int]) -> str:
    return bytes(ids).decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def model() -> GPT:
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=256, max_seq_len=16, d_model=32, n_layers=2, n_heads=2)
    return GPT(cfg).eval()


def test_windows_score_every_token_but_the_first_once() -> None:
    spans = windows(40, 16)
    assert spans == [(0, 17), (16, 33), (32, 40)]
    scored = [t for s, e in spans for t in range(s + 1, e)]
    assert scored == list(range(1, 40))
    assert windows(1, 16) == []
    assert windows(17, 16) == [(0, 17)]


def test_one_window_matches_the_models_own_loss(model: GPT) -> None:
    ids = list(b"hello world, abc")  # 16 bytes -> one window of 15 predictions
    result = evaluate_ids(model, ids, byte_decode)
    x = torch.tensor([ids[:-1]])
    y = torch.tensor([ids[1:]])
    _, loss = model(x, y)
    assert loss is not None
    assert result.loss == pytest.approx(loss.item(), rel=1e-5)
    assert result.tokens == 15
    assert result.windows == 1
    assert result.bytes == 15
    assert result.perplexity == pytest.approx(math.exp(result.loss))
    assert result.bits_per_byte == pytest.approx(result.loss / math.log(2))  # 1 byte per token


def test_batching_and_padding_do_not_change_the_result(model: GPT) -> None:
    ids = list(("The quick brown fox jumps over the lazy dog. " * 3).encode())
    one = evaluate_ids(model, ids, byte_decode, batch_size=1)
    many = evaluate_ids(model, ids, byte_decode, batch_size=4)  # last window padded
    assert one.tokens == many.tokens == len(ids) - 1
    assert many.loss == pytest.approx(one.loss, rel=1e-5)
    assert one.windows == math.ceil((len(ids) - 1) / 16)


def test_multibyte_text_counts_bytes_not_tokens(model: GPT) -> None:
    text = "ab€"  # bytes: a b e2 82 ac; tokens (byte ids) == bytes here
    result = evaluate_ids(model, list(text.encode()), byte_decode)
    assert result.bytes == 4
    assert result.tokens == 4


def test_text_and_split_readers(tmp_path: Path) -> None:
    class Bytes:
        def encode(self, text: str) -> list[int]:
            return list(text.encode())

    (tmp_path / "t.txt").write_text("abcdef")
    assert read_text_tokens(Bytes(), tmp_path / "t.txt", max_tokens=3) == [97, 98, 99]
    with pytest.raises(EvalError, match="input file not found"):
        read_text_tokens(Bytes(), tmp_path / "missing.txt")
    (tmp_path / "one.txt").write_text("a")
    with pytest.raises(EvalError, match="at least 2 are needed"):
        read_text_tokens(Bytes(), tmp_path / "one.txt")

    np.array([1, 2, 70000, 4], dtype=np.uint32).tofile(tmp_path / "val.bin")
    (tmp_path / "meta.json").write_text(json.dumps({"dtype": "uint32"}))
    assert read_split_tokens(tmp_path, "val").tolist() == [1, 2, 70000, 4]
    with pytest.raises(EvalError, match=r"prepared split not found: .*train\.bin"):
        read_split_tokens(tmp_path, "train")


def test_progress_bar_counts_windows_on_stderr_only_when_asked(
    model: GPT, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = list(("The quick brown fox jumps over the lazy dog. " * 3).encode())
    quiet = evaluate_ids(model, ids, byte_decode, batch_size=4)
    assert capsys.readouterr().err == ""
    shown = evaluate_ids(model, ids, byte_decode, batch_size=4, progress=True)
    err = capsys.readouterr().err
    assert "scoring windows: 100%" in err
    assert f"{shown.windows}/{shown.windows}" in err
    assert shown == quiet
    evaluate_ids(model, ids, byte_decode, progress=None)  # captured stderr is no terminal
    assert capsys.readouterr().err == ""
