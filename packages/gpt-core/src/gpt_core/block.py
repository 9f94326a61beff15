"""One transformer block: pre-norm attention and MLP, each added back to the residual."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gpt_core.attention import CausalSelfAttention
from gpt_core.config import GPTConfig
from gpt_core.kv_cache import KVCache
from gpt_core.linear import LinearFn, apply_linear
from gpt_core.mlp import make_mlp
from gpt_core.norm import make_norm


class Block(nn.Module):
    """x + attn(norm(x)), then x + mlp(norm(x)) (GPT-2's pre-norm layout)."""

    def __init__(self, config: GPTConfig, layer_idx: int) -> None:
        super().__init__()
        self.norm1 = make_norm(config)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.norm2 = make_norm(config)
        self.mlp = make_mlp(config)
        self.dropout = config.dropout

    def forward(
        self,
        x: torch.Tensor,
        *,
        cache: KVCache | None = None,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        linear: LinearFn = apply_linear,
    ) -> torch.Tensor:
        """x (B, T, d) -> (B, T, d); rope, cache and linear are passed on to the attention
        (and linear to the MLP)."""
        parts = (self.norm1, self.attn, self.norm2, self.mlp)
        return self.compute(x, parts, rope, cache, linear)

    def compute(
        self,
        x: torch.Tensor,
        parts: Sequence[Callable[..., torch.Tensor]],
        rope: tuple[torch.Tensor, torch.Tensor] | None,
        cache: KVCache | None,
        linear: LinearFn,
    ) -> torch.Tensor:
        """The block's maths on given sub-layers: the modules (forward), or their bound
        forward methods (direct_parts), which gpt_core.decode uses to skip nn.Module dispatch."""
        norm1, attn, norm2, mlp = parts
        if self.training and self.dropout > 0:  # residual dropout, only while training
            x = x + F.dropout(attn(norm1(x), rope, cache, linear), self.dropout)
            return x + F.dropout(mlp(norm2(x), linear), self.dropout)
        x = x + attn(norm1(x), rope, cache, linear)
        return x + mlp(norm2(x), linear)

    def direct_parts(self) -> tuple[Callable[..., torch.Tensor], ...]:
        """norm1, attn, norm2 and mlp as bound forward methods: the same code, minus the
        nn.Module call machinery (and so minus hooks)."""
        return (self.norm1.forward, self.attn.forward, self.norm2.forward, self.mlp.forward)
