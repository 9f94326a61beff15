"""sdpa == manual attention (outputs and gradients, with and without a KV cache).

Cached decoding == recompute for every variant is in test_core_variants.py.

Tolerances: float32 on CPU; the two paths sum in different orders, so outputs agree to
1e-5 and gradients to 1e-4 (absolute and relative), far below any real difference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from gpt_core import GPT, GPTConfig
from gpt_core.attention import causal_mask, manual_attention, sdpa_attention
from gpt_core.block import Block
from gpt_core.config import Norm
from gpt_core.decode import ModeChooser

OUT_TOL: dict[str, Any] = dict(atol=1e-5, rtol=1e-5)
GRAD_TOL: dict[str, Any] = dict(atol=1e-4, rtol=1e-4)
ENCODINGS = ["learned", "rope"]


def pair(pos_encoding: str) -> tuple[GPT, GPT]:
    """Two models with the same weights, one per attention implementation."""
    torch.manual_seed(0)
    base: dict[str, Any] = dict(
        vocab_size=61, max_seq_len=24, d_model=32, n_layers=2, n_heads=4, pos_encoding=pos_encoding
    )
    sdpa = GPT(GPTConfig(**base, attention="sdpa"))
    manual = GPT(GPTConfig(**base, attention="manual"))
    manual.load_state_dict(sdpa.state_dict())
    return sdpa, manual


def grads(model: GPT) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("pos_encoding", ENCODINGS)
def test_sdpa_equals_manual_outputs_and_gradients(pos_encoding: str) -> None:
    sdpa, manual = pair(pos_encoding)
    idx = torch.randint(0, 61, (3, 20))
    targets = torch.randint(0, 61, (3, 20))
    outs = []
    for model in (sdpa, manual):
        logits, loss = model(idx, targets)
        assert loss is not None
        loss.backward()
        outs.append((logits, grads(model)))
    torch.testing.assert_close(outs[0][0], outs[1][0], **OUT_TOL)
    assert outs[0][1].keys() == outs[1][1].keys()
    for name in outs[0][1]:
        torch.testing.assert_close(outs[0][1][name], outs[1][1][name], **GRAD_TOL)


@pytest.mark.parametrize("pos_encoding", ENCODINGS)
def test_sdpa_equals_manual_with_kv_cache(pos_encoding: str) -> None:
    """A cached prefix (no grad), then a chunk of several new tokens with gradients: this
    exercises the bottom-right causal mask on both paths."""
    sdpa, manual = pair(pos_encoding)
    idx = torch.randint(0, 61, (2, 14))
    outs = []
    for model in (sdpa, manual):
        cache = model.new_cache(2)
        with torch.no_grad():
            first, _ = model(idx[:, :9], cache=cache)
        logits, _ = model(idx[:, 9:], cache=cache)  # 5 new tokens after 9 cached ones
        logits.square().mean().backward()
        outs.append((first, logits, grads(model)))
    torch.testing.assert_close(outs[0][0], outs[1][0], **OUT_TOL)
    torch.testing.assert_close(outs[0][1], outs[1][1], **OUT_TOL)
    assert outs[0][2]
    for name in outs[0][2]:
        torch.testing.assert_close(outs[0][2][name], outs[1][2][name], **GRAD_TOL)


def test_attention_functions_agree_on_random_tensors() -> None:
    torch.manual_seed(0)
    q = torch.randn(2, 3, 4, 8)
    k, v = torch.randn(2, 3, 10, 8), torch.randn(2, 3, 10, 8)  # 4 queries after 6 cached keys
    out, weights = manual_attention(q, k, v)
    torch.testing.assert_close(sdpa_attention(q, k, v), out, **OUT_TOL)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 4))
    assert torch.all(weights[..., ~causal_mask(4, 10, q.device)] == 0)
    assert causal_mask(2, 3, q.device).tolist() == [[True, True, False], [True, True, True]]


def test_kv_cache_refuses_to_overflow() -> None:
    model = GPT(GPTConfig(vocab_size=10, max_seq_len=8, d_model=8, n_layers=1, n_heads=2))
    cache = model.new_cache(1, max_len=4)
    with torch.no_grad():
        model(torch.zeros(1, 4, dtype=torch.long), cache=cache)
        with pytest.raises(ValueError, match="KV cache full"):
            model(torch.zeros(1, 1, dtype=torch.long), cache=cache)


def test_decode_mode_chooser_follows_the_faster_mode() -> None:
    chooser = ModeChooser(enabled=True)
    picks = []
    for _ in range(40):
        mode = chooser.pick()
        picks.append(mode)
        chooser.record(mode, 0.001 if not mode else 0.010)  # single-threaded is faster here
    assert picks[:2] == [False, True]  # each mode is tried once
    assert picks.count(True) == 3  # then re-checked after gaps of 8 and 16: steps 10 and 26
    assert picks[10]
    assert picks[26]
    assert not any(ModeChooser(enabled=False).pick() for _ in range(3))


def run_chooser(chooser: ModeChooser, seconds: Callable[[int, bool], float], n: int) -> str:
    """The modes picked over n steps ('T' threaded, 's' single) when step i in a mode
    takes seconds(i, mode)."""
    picks = ""
    for i in range(n):
        mode = chooser.pick()
        picks += "T" if mode else "s"
        chooser.record(mode, seconds(i, mode))
    return picks


def test_decode_mode_chooser_ignores_one_slow_step_but_follows_a_change_in_load() -> None:
    # Threaded is faster (1 ms against 2), but a shared host makes every 7th step 5 ms slow.
    def noisy(i: int, threaded: bool) -> float:
        return (0.001 if threaded else 0.002) + (0.005 if i % 7 == 6 else 0.0)

    picks = run_chooser(ModeChooser(enabled=True), noisy, 200)
    # Only the first try and the re-checks (steps 10, 26, 58, 122) run single-threaded.
    assert picks.count("s") == 5, picks

    # From step 50 another process holds a core and the threaded step takes 40 ms.
    def loaded(i: int, threaded: bool) -> float:
        return 0.040 if threaded and i >= 50 else (0.001 if threaded else 0.002)

    picks = run_chooser(ModeChooser(enabled=True), loaded, 120)
    assert picks[50:53] == "TTT"  # three slow steps in a row: a real change, not noise
    # Single-threaded from then on, but for the re-check at step 58 (the next is at 122).
    assert picks[53:] == "s" * 5 + "T" + "s" * 61


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("pos_encoding", ENCODINGS)
def test_sdpa_equals_manual_on_cuda(pos_encoding: str) -> None:
    """On CUDA, sdpa runs the fused kernels; float32 inputs keep the tolerance tight."""
    sdpa, manual = pair(pos_encoding)
    sdpa, manual = sdpa.cuda(), manual.cuda()
    idx = torch.randint(0, 61, (3, 20), device="cuda")
    a, _ = sdpa(idx)
    b, _ = manual(idx)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        cache = sdpa.new_cache(3)
        steps = [sdpa(idx[:, :5], cache=cache)[0]]
        steps += [sdpa(idx[:, t : t + 1], cache=cache)[0] for t in range(5, 20)]
    torch.testing.assert_close(torch.cat(steps, dim=1), a.detach(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("norm", ["rmsnorm", "layernorm"])
def test_qk_norm_makes_attention_blind_to_the_scale_of_queries_and_keys(norm: Norm) -> None:
    """With qk_norm, q and k are normalised per head: scaling their projection rows changes
    nothing (without it, it sharpens the softmax and changes the output)."""
    outputs = {}
    for qk_norm in (True, False):
        torch.manual_seed(0)
        config = GPTConfig(
            vocab_size=11, max_seq_len=8, d_model=16, n_layers=1, n_heads=2,
            norm=norm, bias=False, qk_norm=qk_norm, pos_encoding="rope",
        )  # fmt: skip
        model = GPT(config).eval()
        idx = torch.randint(0, 11, (2, 8))
        with torch.no_grad():
            block = model.blocks[0]
            assert isinstance(block, Block)
            qkv = block.attn.qkv.weight
            qkv.normal_(0.0, 0.3)  # scores far from uniform
            before, _ = model(idx)
            qkv[: 2 * 16] *= 7.0  # the q and k rows
            after, _ = model(idx)
        outputs[qk_norm] = (before, after)
    torch.testing.assert_close(*outputs[True], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(*outputs[False], atol=1e-3)
