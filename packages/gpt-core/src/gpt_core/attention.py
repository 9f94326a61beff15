"""Causal multi-head self-attention, two ways.

`sdpa` calls torch.nn.functional.scaled_dot_product_attention, which picks a fused kernel
(FlashAttention / memory-efficient on CUDA) and never materialises the (T, T) score matrix.
`manual` spells the same maths out: scores = q k^T / sqrt(d), mask the future, softmax,
weighted sum of values. It is the readable reference, and the path that can hand back the
attention weights (the tracer uses it). Both support a KV cache.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from gpt_core.config import GPTConfig
from gpt_core.kv_cache import KVCache
from gpt_core.linear import LinearFn, apply_linear
from gpt_core.norm import make_norm
from gpt_core.rope import apply_rope


def causal_mask(t_q: int, t_k: int, device: torch.device) -> torch.Tensor:
    """Bool (t_q, t_k), True where query i may see key j.

    The queries are the *last* t_q of the t_k positions (bottom-right aligned), which is what a
    KV cache needs: query i sits at position t_k - t_q + i and sees keys 0..that position.
    """
    q_pos = torch.arange(t_k - t_q, t_k, device=device)[:, None]
    k_pos = torch.arange(t_k, device=device)[None, :]
    return k_pos <= q_pos


def manual_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference causal attention. q (B,H,Tq,hd), k/v (B,H,Tk,hd) -> (out, weights (B,H,Tq,Tk))."""
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (B, H, Tq, Tk)
    mask = causal_mask(q.shape[2], k.shape[2], q.device)
    scores = scores.masked_fill(~mask, float("-inf"))  # a query never sees the future
    weights = F.softmax(scores, dim=-1)  # each row sums to 1
    dropped = F.dropout(weights, p=dropout) if dropout > 0 else weights
    return dropped @ v, weights  # (B, H, Tq, hd)


def sdpa_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout: float = 0.0
) -> torch.Tensor:
    """Fused causal attention with the same semantics as manual_attention."""
    t_q, t_k = q.shape[2], k.shape[2]
    if t_q == t_k:  # no cache, or the first chunk: plain causal
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
    if t_q == 1:  # one new token sees every cached position: no mask at all
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
    # Several new tokens after a cached prefix: is_causal would align the mask top-left,
    # so give the bottom-right aligned mask explicitly.
    mask = causal_mask(t_q, t_k, q.device)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)


def _manual_output(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout: float = 0.0
) -> torch.Tensor:
    return manual_attention(q, k, v, dropout)[0]


# The one table of attention kinds: (q, k, v, dropout) -> out, causal and bottom-right aligned.
ATTENTIONS: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]] = {
    "sdpa": sdpa_attention,
    "manual": _manual_output,
}


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with a fused q/k/v projection (GPT-2 layout)."""

    def __init__(self, config: GPTConfig, layer_idx: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=config.bias)
        self.n_heads = config.n_heads
        self.head_dim = config.head_dim
        self.d_model = config.d_model
        self.dropout = config.dropout
        self.kind = config.attention  # a key of ATTENTIONS
        self.layer_idx = layer_idx
        # QK-norm: queries and keys of unit scale (times a learnt gain) keep the attention
        # logits bounded, which lets a small model take a higher learning rate.
        self.q_norm = make_norm(config, config.head_dim) if config.qk_norm else None
        self.k_norm = make_norm(config, config.head_dim) if config.qk_norm else None
        # Set by gpt_core.tracing only: store this layer's weights in last_weights.
        self.capture_weights = False
        self.last_weights: torch.Tensor | None = None

    def split_heads(
        self, qkv: torch.Tensor, b: int, t: int, rope: tuple[torch.Tensor, torch.Tensor] | None
    ) -> torch.Tensor:
        """The fused projection's output (B, T, 3*d) -> q, k, v per head (3, B, H, T, hd), q
        and k normalised (qk_norm) and then rotated by their positions' RoPE cos/sin rows when
        given (gpt_train.explain reads q and k through this too)."""
        heads = qkv.view(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if self.q_norm is None and rope is None:
            return heads
        qk = heads[:2]
        if self.q_norm is not None and self.k_norm is not None:
            qk = torch.stack((self.q_norm(qk[0]), self.k_norm(qk[1])))
        if rope is not None:  # rotate q and k (in one call)
            qk = apply_rope(qk, *rope)
        return torch.cat((qk, heads[2:]))

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: KVCache | None = None,
        linear: LinearFn = apply_linear,
    ) -> torch.Tensor:
        """x (B, T, d) -> (B, T, d); with a cache, x holds the new positions only. The decode
        step passes x (B, d): one new token per row, with no time axis."""
        lead = x.shape[:-1]  # (B, T), or (B,) for one token per row
        B, T = lead[0], (lead[1] if len(lead) == 2 else 1)
        qkv = self.split_heads(linear(self.qkv, x), B, T, rope)  # one matmul for q, k, v
        q, kv = qkv[0], qkv[1:]  # (B, H, T, hd) and keys/values side by side (2, B, H, T, hd)
        if cache is not None:
            kv = cache.update(self.layer_idx, kv)  # (2, B, H, T_past + T, hd)
        k, v = kv.unbind(0)
        dropout = self.dropout if self.training else 0.0
        if self.capture_weights:  # the tracer wants the weights: the manual path has them
            y, weights = manual_attention(q, k, v, dropout)
            self.last_weights = weights.detach()
        else:
            y = ATTENTIONS[self.kind](q, k, v, dropout)
        y = y.transpose(1, 2).reshape(*lead, self.d_model)  # heads side by side again
        return linear(self.proj, y)
