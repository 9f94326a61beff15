"""The GPT model: causality, initial loss, learning, weight tying, save/load, sizes."""

from __future__ import annotations

import io
import math
from typing import Any

import pytest
import torch
from gpt_core import GPT, ConfigError, GPTConfig
from gpt_core.attention import CausalSelfAttention
from gpt_core.config import Attention, MLPKind, Norm, PosEncoding
from hypothesis import given, settings
from hypothesis import strategies as st


def tiny(**kw: Any) -> GPTConfig:
    base: dict[str, Any] = dict(vocab_size=64, max_seq_len=32, d_model=32, n_layers=2, n_heads=4)
    return GPTConfig(**{**base, **kw})


VARIANTS = [
    dict(pos_encoding="learned", attention="sdpa"),
    dict(pos_encoding="learned", attention="manual"),
    dict(pos_encoding="rope", attention="sdpa", norm="rmsnorm", mlp="swiglu", bias=False),
    dict(pos_encoding="rope", attention="manual", mlp="relu", tie_weights=False),
]


@pytest.mark.parametrize("variant", VARIANTS)
def test_causality_later_tokens_never_change_earlier_logits(variant: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = GPT(tiny(**variant)).eval()
    idx = torch.randint(0, 64, (2, 12))
    changed = idx.clone()
    changed[:, 7:] = (changed[:, 7:] + 1) % 64
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(changed)
    torch.testing.assert_close(a[:, :7], b[:, :7], rtol=0, atol=1e-6)
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_fresh_model_loss_is_near_ln_vocab() -> None:
    torch.manual_seed(0)
    model = GPT(tiny(vocab_size=500, n_layers=4))
    idx = torch.randint(0, 500, (4, 32))
    targets = torch.randint(0, 500, (4, 32))
    _, loss = model(idx, targets)
    assert loss is not None
    assert abs(loss.item() - math.log(500)) < 0.1


def test_ignore_index_minus_one_is_left_out_of_the_mean() -> None:
    torch.manual_seed(0)
    model = GPT(tiny())
    idx = torch.randint(0, 64, (1, 8))
    targets = torch.randint(0, 64, (1, 8))
    masked = targets.clone()
    masked[:, 4:] = -1
    logits, loss = model(idx, masked)
    expected = torch.nn.functional.cross_entropy(logits[0, :4], targets[0, :4])
    assert loss is not None
    torch.testing.assert_close(loss, expected)


def test_overfits_one_small_batch() -> None:
    torch.manual_seed(0)
    model = GPT(tiny(pos_encoding="rope", n_layers=1))
    idx = torch.randint(0, 64, (2, 16))
    targets = torch.roll(idx, -1, dims=1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        _, loss = model(idx, targets)
        assert loss is not None
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[0] > 3.5  # about ln(64) = 4.16 at the start
    assert losses[-1] < 0.1


def test_tied_weights_share_storage() -> None:
    model = GPT(tiny())
    assert model.lm_head.weight is model.tok_emb.weight
    assert model.lm_head.weight.data_ptr() == model.tok_emb.weight.data_ptr()
    untied = GPT(tiny(tie_weights=False))
    assert untied.lm_head.weight.data_ptr() != untied.tok_emb.weight.data_ptr()


@pytest.mark.parametrize("variant", VARIANTS)
def test_state_dict_round_trip(variant: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = GPT(tiny(**variant)).eval()
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    torch.manual_seed(1)
    other = GPT(tiny(**variant)).eval()
    idx = torch.randint(0, 64, (2, 10))
    assert not torch.equal(model(idx)[0], other(idx)[0])
    other.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(model(idx)[0], other(idx)[0])
    if model.config.tie_weights:
        assert other.lm_head.weight.data_ptr() == other.tok_emb.weight.data_ptr()
    assert not any("rope" in k for k in model.state_dict())  # derived buffers are not saved


def test_init_scales_residual_projections() -> None:
    torch.manual_seed(0)
    model = GPT(tiny(d_model=128, n_layers=8, n_heads=4))
    attn = next(m for m in model.modules() if isinstance(m, CausalSelfAttention))
    qkv_std = attn.qkv.weight.std().item()
    proj_std = attn.proj.weight.std().item()
    assert abs(qkv_std - 0.02) < 0.002
    assert abs(proj_std - 0.02 / math.sqrt(16)) < 0.001
    assert torch.count_nonzero(attn.qkv.bias) == 0


def test_padded_vocab_logits_have_exactly_vocab_size_columns() -> None:
    model = GPT(tiny(vocab_size=50, pad_vocab_multiple=64))
    assert model.tok_emb.weight.shape[0] == 64
    logits, _ = model(torch.randint(0, 50, (1, 5)))
    assert logits.shape == (1, 5, 50)


def test_parameter_counts_and_flops() -> None:
    config = tiny(vocab_size=64, max_seq_len=32, d_model=32, n_layers=2)
    model = GPT(config)
    per_block = (32 * 96 + 96) + (32 * 32 + 32) + 2 * (2 * 32) + (32 * 128 + 128) + (128 * 32 + 32)
    embeddings = 64 * 32 + 32 * 32
    expected = embeddings + 2 * per_block + 2 * 32
    assert model.num_parameters() == expected
    non_embedding = expected - embeddings
    assert model.num_parameters(exclude_embeddings=True) == non_embedding
    # the tied head is a matmul, so it counts in N for FLOPs
    n = non_embedding + 64 * 32
    assert model.flops_per_token() == 6 * n + 12 * 2 * 32 * 32
    assert model.flops_per_token(seq_len=8) == 6 * n + 12 * 2 * 32 * 8
    assert model.estimate_mfu(1000.0, peak_flops=1e12) == pytest.approx(
        model.flops_per_token() * 1000.0 / 1e12
    )
    untied = GPT(tiny(tie_weights=False))
    assert untied.num_parameters() == expected + 64 * 32
    assert untied.flops_per_token() == model.flops_per_token()


def test_too_long_input_is_a_clear_error() -> None:
    model = GPT(tiny(max_seq_len=8))
    with pytest.raises(ConfigError, match="longer than max_seq_len 8"):
        model(torch.zeros(1, 9, dtype=torch.long))


@settings(max_examples=25, deadline=None)
@given(
    vocab=st.integers(2, 40),
    head_dim=st.sampled_from([2, 4, 8]),
    n_heads=st.integers(1, 3),
    n_layers=st.integers(1, 2),
    pos=st.sampled_from(["learned", "rope"]),
    norm=st.sampled_from(["layernorm", "rmsnorm"]),
    mlp=st.sampled_from(["gelu", "relu", "relu2", "swiglu"]),
    attention=st.sampled_from(["sdpa", "manual"]),
    bias=st.booleans(),
    tie=st.booleans(),
    qk_norm=st.booleans(),
    pad=st.sampled_from([1, 8, 64]),
    batch=st.integers(1, 3),
    data=st.data(),
)
def test_random_small_configs_give_finite_outputs_of_the_right_shape(
    vocab: int,
    head_dim: int,
    n_heads: int,
    n_layers: int,
    pos: PosEncoding,
    norm: Norm,
    mlp: MLPKind,
    attention: Attention,
    bias: bool,
    tie: bool,
    qk_norm: bool,
    pad: int,
    batch: int,
    data: st.DataObject,
) -> None:
    config = GPTConfig(
        vocab_size=vocab,
        max_seq_len=12,
        d_model=head_dim * n_heads,
        n_layers=n_layers,
        n_heads=n_heads,
        pos_encoding=pos,
        norm=norm,
        mlp=mlp,
        attention=attention,
        bias=bias,
        tie_weights=tie,
        qk_norm=qk_norm,
        pad_vocab_multiple=pad,
    )
    model = GPT(config)
    T = data.draw(st.integers(1, 12))
    idx = torch.randint(0, vocab, (batch, T))
    logits, loss = model(idx, torch.randint(0, vocab, (batch, T)))
    assert logits.shape == (batch, T, vocab)
    assert loss is not None
    assert torch.isfinite(loss)
    assert torch.isfinite(logits).all()
    loss.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
