"""The sample loop, streaming decode (split UTF-8 characters, stop text), top-k display and
attention images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from gpt_core import GPT, GPTConfig, SamplingConfig, generate
from gpt_eval import EvalError
from gpt_eval.attention_plot import plot_attention, token_labels
from gpt_eval.sampling import TextStream, format_step, prompt_ids, sample_text, top_candidates
from gpt_tokenizers import CharTokenizer


def byte_decode(ids: Sequence[int]) -> str:
    """A byte-level 'tokenizer': every id is one byte, so characters split across ids."""
    return bytes(ids).decode("utf-8", errors="replace")


def stream_all(text: str, stops: Sequence[str] = ()) -> tuple[list[str], TextStream]:
    ts = TextStream(byte_decode, stops=stops)
    pieces = []
    for b in text.encode("utf-8"):
        pieces.append(ts.push(b))
        if ts.stopped:
            break
    pieces.append(ts.finish())
    return pieces, ts


def test_split_characters_are_printed_whole() -> None:
    text = "héllo → 世界 🙂!"
    pieces, ts = stream_all(text)
    assert "".join(pieces) == text
    assert ts.text == text
    assert all("\ufffd" not in p for p in pieces)  # never half a character on screen
    assert "🙂" in pieces  # the 4-byte emoji appears in one piece, once it is complete


def test_stop_text_ends_the_sample_before_it() -> None:
    pieces, ts = stream_all("first line\nEND more text", stops=["\nEND"])
    assert ts.stopped
    assert ts.text == "first line"
    assert "".join(pieces) == "first line"


def test_a_partial_stop_is_held_back_then_released() -> None:
    ts = TextStream(byte_decode, stops=["STOP"])
    out = "".join(ts.push(b) for b in b"aST")
    assert out == "a"  # "ST" could still become "STOP"
    out += "".join(ts.push(b) for b in b"x")
    assert out == "aSTx"
    assert not ts.stopped


def test_top_candidates_and_step_line() -> None:
    probs = torch.tensor([0.05, 0.5, 0.0, 0.3, 0.15])
    cands = top_candidates(probs, lambda ids: "abcde"[ids[0]], k=5)
    assert [c[0] for c in cands] == [1, 3, 4, 0]  # zero-probability tokens are left out
    assert cands[0][2] == pytest.approx(0.5)
    line = format_step(3, (3, "d", 0.3), cands)
    assert line.startswith("step    3  chose")
    assert "*'d' 0.300" in line
    assert " 'b' 0.500" in line


def test_attention_plot_writes_a_grid_image(tmp_path: Path) -> None:
    import matplotlib.image

    T, H = 6, 2
    causal = np.tril(np.ones((T, T)))
    causal /= causal.sum(-1, keepdims=True)
    maps = [np.stack([causal] * H), np.stack([causal] * H)]
    labels = token_labels([104, 32, 10, 105, 33, 33], lambda ids: chr(ids[0]))
    assert labels[:3] == ["h", "·", "\\n"]
    path = plot_attention(maps, labels, tmp_path / "att.png")
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 200
    assert image.shape[1] > 200
    with pytest.raises(EvalError, match="token labels"):
        plot_attention(maps, labels[:-1], tmp_path / "bad.png")
    with pytest.raises(EvalError, match="no attention maps"):
        plot_attention([], labels, tmp_path / "none.png")


def tiny_run() -> Any:
    """A run-like object: an untrained GPT over a character vocabulary with end-of-text."""
    tok = CharTokenizer.from_text("abcde \n", eos=True)
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=tok.vocab_size, max_seq_len=16, d_model=16, n_layers=1, n_heads=2)
    return SimpleNamespace(model=GPT(config).eval(), tokenizer=tok)


def test_sample_text_streams_what_generate_makes() -> None:
    run = tiny_run()
    ids = prompt_ids(run.tokenizer, "ab")
    sampling = SamplingConfig(max_new_tokens=12, temperature=1.0, seed=5)
    pieces: list[str] = []
    text = sample_text(run, ids, sampling, pieces.append)
    assert "".join(pieces) == text + "\n"
    out = generate(
        run.model, torch.tensor([ids]), replace(sampling, stop_ids=(run.tokenizer.eot_id,))
    )
    new = [i for i in out[0, len(ids) :].tolist() if i != run.tokenizer.eot_id]
    assert text == run.tokenizer.decode(new)[: len(text)]
    assert text  # an untrained model over 8 ids rarely stops at once; seed 5 does not


def test_sample_text_stop_strings_and_verbose_lines() -> None:
    run = tiny_run()
    ids = prompt_ids(run.tokenizer, "")
    assert ids == [run.tokenizer.eot_id]  # an empty prompt starts a document
    sampling = SamplingConfig(max_new_tokens=10, temperature=1.0, seed=5)
    full = sample_text(run, ids, sampling, lambda _: None)
    cut = sample_text(run, ids, sampling, lambda _: None, stops=[full[3:5]])
    assert cut == full[: full.index(full[3:5])]
    lines: list[str] = []
    sample_text(run, ids, replace(sampling, max_new_tokens=3), lines.append, verbose=True)
    assert lines[0].startswith("shapes: prompt (1, 1) = (1, T) -> logits (1, 1, 8)")
    assert [ln[:5] for ln in lines[1:-1]] == ["step "] * (len(lines) - 2)
    assert lines[-1].startswith("--- text ---\n")
