"""Normalisation layers: LayerNorm (GPT-2) or RMSNorm (LLaMA-style, no mean, no bias)."""

from __future__ import annotations

from torch import nn

from gpt_core.config import GPTConfig


def make_norm(config: GPTConfig) -> nn.Module:
    """The norm the config asks for, over the last (d_model) dimension."""
    if config.norm == "rmsnorm":
        # x / sqrt(mean(x^2) + eps) * weight: cheaper than LayerNorm and works as well.
        return nn.RMSNorm(config.d_model, eps=config.norm_eps)
    return nn.LayerNorm(config.d_model, eps=config.norm_eps, bias=config.bias)
