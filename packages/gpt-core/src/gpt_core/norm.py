"""Normalisation layers: LayerNorm (GPT-2) or RMSNorm (LLaMA-style, no mean, no bias).

NORMS is the one table of norm kinds: a new kind is a new entry here (and its name in
GPTConfig's choices); training, cached decoding and export all build norms through it.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from gpt_core.config import GPTConfig

NORMS: dict[str, Callable[[GPTConfig, int], nn.Module]] = {
    "layernorm": lambda c, dim: nn.LayerNorm(dim, eps=c.norm_eps, bias=c.bias),
    # x / sqrt(mean(x^2) + eps) * weight: cheaper than LayerNorm and works as well.
    "rmsnorm": lambda c, dim: nn.RMSNorm(dim, eps=c.norm_eps),
}


def make_norm(config: GPTConfig, dim: int | None = None) -> nn.Module:
    """The norm the config asks for, over the last dimension: d_model, or `dim` (qk_norm
    normalises each head's head_dim-wide query and key)."""
    return NORMS[config.norm](config, config.d_model if dim is None else dim)
