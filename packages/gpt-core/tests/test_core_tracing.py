"""The tracer records every module call in order, attention weights, and leaves no trace."""

from __future__ import annotations

import pytest
import torch
from gpt_core import GPT, GPTConfig
from gpt_core.attention import CausalSelfAttention, manual_attention
from gpt_core.config import Attention
from gpt_core.tracing import trace


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
def test_trace_records_modules_in_call_order_with_stats(attention: Attention) -> None:
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(
            vocab_size=40, max_seq_len=16, d_model=16, n_layers=2, n_heads=2, attention=attention
        )
    ).eval()
    idx = torch.randint(0, 40, (3, 7))
    plain, _ = model(idx)
    with trace(model) as t:
        traced, _ = model(idx)
    torch.testing.assert_close(traced, plain, atol=1e-5, rtol=1e-5)  # tracing changes nothing

    names = [r.name for r in t.records]
    assert names[:3] == ["", "tok_emb", "drop"]
    assert names.index("blocks.0.norm1") < names.index("blocks.0.attn")
    assert names.index("blocks.0.attn") < names.index("blocks.0.attn.qkv")
    assert names.index("blocks.0.attn.proj") < names.index("blocks.0.norm2")
    assert names.index("blocks.1.mlp.proj") < names.index("norm_f") < names.index("lm_head")
    by_name = {r.name: r for r in t.records}
    qkv = by_name["blocks.1.attn.qkv"]
    assert qkv.kind == "Linear"
    assert qkv.input_shapes == [(3, 7, 16)]
    assert qkv.output_shapes == [(3, 7, 48)]
    assert by_name[""].output_shapes == [(3, 7, 40)]
    norm = by_name["blocks.0.norm1"]
    assert abs(norm.mean) < 1e-4
    assert abs(norm.std - 1.0) < 0.05
    assert norm.min < 0 < norm.max

    assert len(t.attention) == 2
    w = t.attention[0]
    assert w.shape == (3, 2, 7, 7)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 2, 7))
    assert torch.all(w.triu(diagonal=1) == 0)  # nothing attends to the future
    table = t.format()
    assert "blocks.0.attn.qkv" in table
    assert "3x7x48" in table
    assert "attention weights, layer 1: (3, 2, 7, 7)" in table


def test_trace_attention_weights_are_the_real_ones() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=40, max_seq_len=16, d_model=16, n_layers=1, n_heads=2)).eval()
    idx = torch.randint(0, 40, (1, 5))
    captured: list[torch.Tensor] = []
    attn = next(m for m in model.modules() if isinstance(m, CausalSelfAttention))
    handle = attn.register_forward_pre_hook(lambda m, args: captured.append(args[0]))
    with trace(model) as t:
        model(idx)
    handle.remove()
    q, k, _ = attn.qkv(captured[0]).split(16, dim=2)
    q = q.view(1, 5, 2, 8).transpose(1, 2)
    k = k.view(1, 5, 2, 8).transpose(1, 2)
    _, expected = manual_attention(q, k, k)
    torch.testing.assert_close(t.attention[0], expected)


def test_tracer_is_removed_after_the_block() -> None:
    model = GPT(GPTConfig(vocab_size=40, max_seq_len=16, d_model=16, n_layers=1, n_heads=2))
    with trace(model) as t:
        model(torch.zeros(1, 3, dtype=torch.long))
    n = len(t.records)
    model(torch.zeros(1, 3, dtype=torch.long))
    assert len(t.records) == n
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    layers = [m for m in model.modules() if isinstance(m, CausalSelfAttention)]
    assert layers
    assert all(not a.capture_weights and a.last_weights is None for a in layers)
